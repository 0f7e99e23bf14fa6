"""Streaming metrics: 10 keys x 100,000 steps through the fluent API, next to MLflow in the same run.

    python -m bench.streaming [--steps 100000] [--postgres-uri postgresql+psycopg://...]
                              [--mlflow-python ~/.cache/tracklane-bench/mlflow-venv/bin/python]
                              [--skip sqlite --skip mlflow]   (while iterating)

For Tracklane on SQLite and on PostgreSQL, each workload runs in a fresh client process (so its
peak RSS is its own) against a server in its own process:
- ``log_metric`` in a loop, one call per point;
- ``log_metric_array``, one call per key of 100,000 points;
points/s is measured from the first call to the last acknowledgement (``tracklane.flush()``); the
cost of one ``log_metric`` is the median over blocks of 100 calls (loop included).

MLflow's tracking server (4 workers, same PostgreSQL, its own virtualenv) gets the same kind of
workload, smaller because it is slow (``--mlflow-points``): ``MlflowClient.log_batch`` of 1,000
metrics per call, and ``mlflow.log_metric(..., synchronous=False)`` with
``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1`` until ``flush_async_logging()``. Ratios compare rates.
Targets (issue 4): >= 1,000,000 points/s with log_metric, >= 3,000,000 with arrays, log_metric
<= 1 us median, >= 50x MLflow log_batch on the same backend.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

from bench._harness import MLFLOW_PYTHON, mlflow_run, scratch_database, tracklane_server

KEYS = 10


def client_workload(uri: str, form: str, steps: int) -> dict[str, float]:
    """Runs in the client process (``--client``): logs, flushes, reports rates and peak RSS."""
    import resource
    import statistics
    import time

    import numpy as np

    import tracklane

    tracklane.set_tracking_uri(uri)
    keys = [f"metric_{k}" for k in range(KEYS)]
    run = tracklane.start_run()
    tracklane.log_metric("warmup", 0.0)  # the stream, the buffer and the key table exist before timing
    tracklane.flush()
    log_metric = tracklane.log_metric
    clock = time.perf_counter
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = clock()
    if form == "loop":
        for step in range(steps):
            value = step * 0.001
            for key in keys:
                log_metric(key, value, step)
    else:
        values = np.arange(steps, dtype=np.float64) * 0.001
        step_column = np.arange(steps, dtype=np.int64)
        for key in keys:
            tracklane.log_metric_array(key, values, steps=step_column)
    logged = clock() - started
    tracklane.flush()
    acked = clock() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = usage.ru_utime + usage.ru_stime - cpu_before
    tracklane.end_run()
    # The cost of one call, apart: median over blocks of 100 calls into a second run, in wall time
    # and in this thread's CPU time (which leaves out time the OS gave to other processes).
    blocks, cpu_blocks = [], []
    cpu = time.thread_time
    with tracklane.start_run():
        for block in range(2_000):
            t0, c0 = clock(), cpu()
            for i in range(100):
                log_metric("cost", 1.0, i)
            blocks.append((clock() - t0) / 100)
            cpu_blocks.append((cpu() - c0) / 100)
            if block % 100 == 99:
                tracklane.flush()  # off the clock: keeps the sender from piling up behind
    stored = tracklane.Client(uri).get_metric_history(run.info.run_id, keys[-1])
    assert len(stored.steps) == steps, len(stored.steps)
    return {
        "points": steps * KEYS,
        "logged_s": logged,
        "acked_s": acked,
        "cpu_s": client_cpu,
        "call_ns": statistics.median(blocks) * 1e9,
        "call_cpu_ns": statistics.median(cpu_blocks) * 1e9,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench_tracklane(label: str, settings: list[str], steps: int) -> dict[str, dict[str, float]]:
    results = {}
    with tracklane_server(settings) as uri:
        server = server_process(uri)
        for form in ("loop", "array"):
            server_cpu = _cpu_seconds(server)
            database_cpu = _postgres_cpu_seconds()
            out = subprocess.run(
                [sys.executable, "-m", "bench.streaming", "--client", uri, form, str(steps)],
                check=True,
                capture_output=True,
                text=True,
                timeout=900,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            # The server's CPU over the whole client process (warm-up and checks too): an upper bound.
            r["server_cpu_s"] = _cpu_seconds(server) - server_cpu
            r["database_cpu_s"] = _postgres_cpu_seconds() - database_cpu
            results[form] = r
            name = "log_metric loop" if form == "loop" else "log_metric_array"
            print(
                f"  {label:<24} {name:<17} {r['points'] / r['acked_s']:>12,.0f} points/s to last ack "
                f"(logging {r['logged_s']:.2f} s, acked {r['acked_s']:.2f} s)   "
                f"log_metric {r['call_ns']:5.0f} ns median (CPU {r['call_cpu_ns']:4.0f} ns)   "
                f"peak RSS {r['rss_mb']:4.0f} MB"
            )
            per_point = 1e9 / r["points"]
            print(
                f"  {'':<24} {'':<17} CPU per point: client {r['cpu_s'] * per_point:5.0f} ns, "
                f"server {r['server_cpu_s'] * per_point:5.0f} ns, "
                f"PostgreSQL {r['database_cpu_s'] * per_point:5.0f} ns "
                "(whole client run; the load on a shared machine slows wall time, not these)"
            )
    return results


def server_process(uri: str) -> Any:
    """The psutil.Process serving ``uri`` (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    port = uri.rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        if f"127.0.0.1:{port}" in " ".join(proc.info["cmdline"] or ()):
            return proc
    return None


def _postgres_cpu_seconds() -> float:
    """CPU time of the PostgreSQL server processes on this machine (nan without psutil; 0 on SQLite
    runs apart from other sessions' work)."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "postgres":
            try:
                total += _cpu_seconds(proc)
            except psutil.Error:  # a backend that ended meanwhile
                continue
    return total


def _cpu_seconds(proc: Any) -> float:
    if proc is None:
        return float("nan")
    times = proc.cpu_times()
    return float(times.user + times.system)


MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    http_uri, points = sys.argv[2], int(sys.argv[3])
    keys = [f"metric_{k}" for k in range(10)]
    steps = points // len(keys)
    client = MlflowClient(tracking_uri=http_uri)
    run_id = client.create_run("0").info.run_id
    now = int(time.time() * 1000)
    t = time.perf_counter()
    batch = []
    for step in range(steps):
        for key in keys:
            batch.append(Metric(key, step * 0.001, now, step))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    log_batch = time.perf_counter() - t
    mlflow.set_tracking_uri(http_uri)
    with mlflow.start_run():
        steps_async = max(1, steps // 10)
        t = time.perf_counter()
        for step in range(steps_async):
            for key in keys:
                mlflow.log_metric(key, step * 0.001, step=step, synchronous=False)
        looped = time.perf_counter() - t
        mlflow.flush_async_logging()
        flushed = time.perf_counter() - t
    print(json.dumps({"log_batch": [steps * 10, log_batch],
                      "async": [steps_async * 10, looped, flushed]}))
    """
)


def bench_mlflow(python: str, postgres_admin: str, points: int) -> dict[str, float] | None:
    r = mlflow_run(python, postgres_admin, MLFLOW_SCRIPT, [str(points)])
    if r is None:
        return None
    (n_batch, t_batch), (n_async, looped, flushed) = r["log_batch"], r["async"]
    label = "MLflow (PostgreSQL)"
    print(f"  {label:<24} {'log_batch x1000':<17} {n_batch / t_batch:>12,.0f} points/s ({n_batch} points)")
    print(
        f"  {label:<24} {'async log_metric':<17} {n_async / flushed:>12,.0f} points/s to flushed "
        f"({n_async} points)   log_metric {looped / n_async * 1e6:6.0f} us per call in the loop"
    )
    return {"log_batch": n_batch / t_batch, "async": n_async / flushed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    parser.add_argument("--mlflow-points", type=int, default=100_000)
    parser.add_argument(
        "--skip", action="append", default=[], choices=["sqlite", "mlflow"], help="leave a part out"
    )
    parser.add_argument("--client", nargs=3, metavar=("URI", "FORM", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        uri, form, steps = args.client
        with tempfile.TemporaryDirectory() as spool:
            os.environ["TRACKLANE_SPOOL_DIR"] = spool
            print(json.dumps(client_workload(uri, form, int(steps))))
        return
    print(f"streaming metrics: {KEYS} keys x {args.steps} steps = {KEYS * args.steps:,} points per workload")
    ours = {} if "sqlite" in args.skip else {"SQLite": bench_tracklane("Tracklane (SQLite)", [], args.steps)}
    if not args.postgres_uri:
        print("  PostgreSQL and MLflow skipped: give --postgres-uri or TRACKLANE_TEST_POSTGRES_URI")
        return
    with scratch_database(args.postgres_uri) as uri:
        ours["PostgreSQL"] = bench_tracklane(
            "Tracklane (PostgreSQL)", ["--backend-store-uri", uri], args.steps
        )
    mlflow = (
        None
        if "mlflow" in args.skip
        else bench_mlflow(args.mlflow_python, args.postgres_uri, args.mlflow_points)
    )
    pg = ours["PostgreSQL"]
    loop_rate = pg["loop"]["points"] / pg["loop"]["acked_s"]
    array_rate = pg["array"]["points"] / pg["array"]["acked_s"]
    print(
        f"  targets on PostgreSQL: log_metric loop {loop_rate / 1e6:.2f} M/s (>= 1.0), arrays "
        f"{array_rate / 1e6:.2f} M/s (>= 3.0), log_metric {pg['loop']['call_ns']:.0f} ns "
        f"(CPU {pg['loop']['call_cpu_ns']:.0f} ns) (<= 1000)"
    )
    if mlflow:
        print(
            f"  ratio Tracklane/MLflow on PostgreSQL: log_metric loop vs log_batch "
            f"{loop_rate / mlflow['log_batch']:.0f}x (target >= 50x), arrays vs log_batch "
            f"{array_rate / mlflow['log_batch']:.0f}x, log_metric loop vs async log_metric "
            f"{loop_rate / mlflow['async']:.0f}x"
        )


if __name__ == "__main__":
    main()
