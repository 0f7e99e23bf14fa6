"""Go's metric Streamer next to Python's fluent ``log_metric``, on the same server in one run.

    python -m bench.polyglot_streaming [--points 1000000] [--rounds 3] [--postgres-uri postgresql+psycopg://...]

One ``tracklane server`` (SQLite, and PostgreSQL when ``--postgres-uri`` is given) serves both. Each
round logs ``--points`` points of one key into a fresh run, each client in its own process:
- Go: ``client/go/cmd/tracklane-polyglot stream`` (``Streamer.LogAt`` in a loop, then ``Close``);
- Python: ``tracklane.log_metric`` in a loop, then ``tracklane.flush()``.
points/s runs from the first call to the last acknowledgement (every point committed); the median
round is printed, with the cost of one call in the loop and the Go/Python ratio. The history is read
back once per client and counted, so a fast number cannot hide lost points.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench._harness import scratch_database, tracklane_server

ROOT = Path(__file__).resolve().parent.parent
GO_DIR = ROOT / "client" / "go"


def python_client(uri: str, points: int) -> dict[str, float]:
    """Runs in the client process (``--python-client``): logs, flushes, reports the times."""
    import time

    import tracklane

    tracklane.set_tracking_uri(uri)
    run = tracklane.start_run()
    tracklane.log_metric("warmup", 0.0)  # the stream and the key table exist before timing
    tracklane.flush()
    log_metric = tracklane.log_metric
    clock = time.perf_counter
    started = clock()
    for i in range(points):
        log_metric("loss", i * 0.001, i)
    logged = clock() - started
    tracklane.flush()
    seconds = clock() - started
    tracklane.end_run()
    client = tracklane.Client(uri)
    stored = len(client.get_metric_history(run.info.run_id, "loss"))
    return {"seconds": seconds, "log_seconds": logged, "stored": stored}


def run_python(uri: str, points: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.polyglot_streaming", "--python-client", uri, "--points", str(points)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def run_go(binary: Path, uri: str, points: int) -> dict[str, float]:
    import tracklane

    client = tracklane.Client(uri)
    run_id = client.create_run(run_name="go-bench").info.run_id
    address = uri.removeprefix("grpc://")
    out = subprocess.run(
        [str(binary), "stream", "-addr", address, "-run", run_id, "-points", str(points)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    result["stored"] = len(client.get_metric_history(run_id, "loss"))
    client.close()
    return result


def measure(name: str, uri: str, binary: Path, points: int, rounds: int) -> None:
    rows: dict[str, list[dict[str, float]]] = {"go": [], "python": []}
    for _ in range(rounds):  # interleaved, so a slow phase of the machine hits both
        rows["go"].append(run_go(binary, uri, points))
        rows["python"].append(run_python(uri, points))
    rates: dict[str, float] = {}
    print(f"\n{name}: {points:,} points of one key per round, median of {rounds} rounds")
    print(f"  {'client':<28} {'points/s':>12} {'per call':>10} {'seconds':>9} {'stored':>10}")
    for lang, label in (("go", "Go Streamer.LogAt"), ("python", "Python tracklane.log_metric")):
        results = rows[lang]
        seconds = statistics.median(r["seconds"] for r in results)
        per_call_us = statistics.median(r["log_seconds"] for r in results) / points * 1e6
        stored = min(int(r["stored"]) for r in results)
        rates[lang] = points / seconds
        print(f"  {label:<28} {rates[lang]:>12,.0f} {per_call_us:>8.2f}us {seconds:>9.3f} {stored:>10,}")
        if stored != points:
            print(f"  WARNING: {label} stored {stored:,} of {points:,} points")
    print(f"  Go / Python: {rates['go'] / rates['python']:.2f}x")


def build_go(out_dir: Path) -> Path:
    if shutil.which("go") is None:
        sys.exit("go not on PATH: install Go to build client/go/cmd/tracklane-polyglot")
    binary = out_dir / "tracklane-polyglot"
    subprocess.run(["go", "build", "-o", str(binary), "./cmd/tracklane-polyglot"], cwd=GO_DIR, check=True)
    return binary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-uri", default="", help="admin URI; a scratch database is created in it")
    parser.add_argument("--python-client", metavar="URI", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.python_client:
        print(json.dumps(python_client(args.python_client, args.points)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_go(Path(tmp))
        with tracklane_server([]) as uri:
            measure("SQLite", uri, binary, args.points, args.rounds)
        if args.postgres_uri:
            with ExitStack() as stack:
                db = stack.enter_context(scratch_database(args.postgres_uri))
                uri = stack.enter_context(tracklane_server(["--backend-store-uri", db]))
                measure("PostgreSQL", uri, binary, args.points, args.rounds)


if __name__ == "__main__":
    main()
