"""Metric history: one key with N points (default 1,000,000) read back whole and downsampled to 1,000.

    python -m bench.history [--points 1000000] [--postgres-uri postgresql+psycopg://...]

Times are medians of 5 rounds, client to server over loopback gRPC, the server in its own process.
Targets (issue 3, on PostgreSQL): whole history < 1 s; downsampled to 1,000 points < 100 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import tracklane
from bench._harness import ROUNDS, median_seconds, scratch_database, tracklane_server
from tracklane.entities import Metric

BATCH = 100_000


def bench(label: str, settings: list[str], points: int) -> None:
    with tracklane_server(settings) as uri:
        client = tracklane.Client(uri)
        run_id = client.create_run().info.run_id
        started = time.perf_counter()
        for first in range(0, points, BATCH):
            client.log_batch(
                run_id,
                metrics=[
                    Metric("loss", math.sin(s / 1000), s, 1_700_000_000_000 + s)
                    for s in range(first, min(first + BATCH, points))
                ],
            )
        logged = time.perf_counter() - started
        whole, n_whole = median_seconds(
            lambda: len(client.get_metric_history(run_id, "loss", page_size=1_000_000))
        )
        sampled, n_sampled = median_seconds(
            lambda: len(client.get_metric_history(run_id, "loss", max_points=1000))
        )
        client.close()
    assert n_whole == points, n_whole
    print(
        f"  {label:<22} logged {points} points in {logged:5.1f} s (LogBatch)   whole history "
        f"{whole * 1000:7.1f} ms ({n_whole} points)   "
        f"downsampled {sampled * 1000:6.1f} ms ({n_sampled} points)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    args = parser.parse_args()
    print(f"metric history, one key, {args.points} points; median of {ROUNDS} rounds")
    bench("Tracklane (SQLite)", [], args.points)
    if args.postgres_uri:
        with scratch_database(args.postgres_uri) as uri:
            bench("Tracklane (PostgreSQL)", ["--backend-store-uri", uri], args.points)
    else:
        print("  PostgreSQL skipped: give --postgres-uri or TRACKLANE_TEST_POSTGRES_URI")


if __name__ == "__main__":
    main()
