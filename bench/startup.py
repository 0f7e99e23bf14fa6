"""How long a fresh embedded-default server takes from process start to listening (target < 3 s).

    python -m bench.startup [--runs 5]

Each run starts ``tracklane server`` on a new, empty data folder (so the SQLite schema is created
too) and times until the ``listening on`` log line, as a user sees it; prints each run and the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from tests.servers.process import start_server


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    seconds = []
    with tempfile.TemporaryDirectory(prefix="tracklane-startup-") as tmp:
        for i in range(args.runs):
            data_dir = Path(tmp) / f"data-{i}"
            with start_server(data_dir=data_dir, log_dir=Path(tmp)) as server:
                seconds.append(server.ready_after)
                server.terminate()
            print(f"run {i + 1}: listening after {seconds[-1]:.2f} s")
    print(f"median {statistics.median(seconds):.2f} s (target < 3 s), max {max(seconds):.2f} s")


if __name__ == "__main__":
    main()
