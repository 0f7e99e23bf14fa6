"""Model registry: Tracklane (SQLite, PostgreSQL) next to MLflow's server on the same PostgreSQL.

Per system, times:
  register:  N versions of one model from 8 threads at once (registrations per second), then checks
             that the versions are exactly 1..N (MLflow's failures and gaps are counted, not hidden)
  by alias:  get_model_version_by_alias, sequential, median per call over several rounds
  promote:   set_registered_model_alias moving one alias back and forth, median per call

    python -m bench.registry --postgres-uri postgresql+psycopg://USER:PASSWORD@127.0.0.1:5432/tracklane \
        [--versions 200] [--mlflow-python ~/.cache/tracklane-bench/mlflow-venv/bin/python]

MLflow is optional (skipped with a note when its virtualenv is missing). Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import tracklane
from bench._harness import (
    MLFLOW_PYTHON,
    ROUNDS,
    median_seconds,
    mlflow_run,
    scratch_database,
    tracklane_server,
)

THREADS = 8
CALLS = 50  # per timed round of the single-call figures


def bench_tracklane(label: str, settings: list[str], n_versions: int) -> dict[str, float]:
    with tracklane_server(settings) as uri:
        client = tracklane.Client(uri)
        client.create_registered_model("bench")

        def register(i: int) -> int:
            try:
                return client.create_model_version("bench", f"s3://bucket/model-{i}").version
            except tracklane.exceptions.TracklaneError:
                return -1

        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            numbers = list(pool.map(register, range(n_versions)))
        elapsed = time.perf_counter() - started
        exact = sorted(numbers) == list(range(1, n_versions + 1))
        client.set_registered_model_alias("bench", "champion", 1)

        def by_alias() -> int:
            for _ in range(CALLS):
                client.get_model_version_by_alias("bench", "champion")
            return CALLS

        def promote() -> int:
            for i in range(CALLS):
                client.set_registered_model_alias("bench", "champion", 1 + i % 2)
            return CALLS

        alias_s, _ = median_seconds(by_alias)
        promote_s, _ = median_seconds(promote)
        client.close()
    result = {
        "per_second": n_versions / elapsed,
        "by_alias_ms": alias_s / CALLS * 1000,
        "promote_ms": promote_s / CALLS * 1000,
    }
    _print(label, result, numbers.count(-1), exact)
    return result


def _print(label: str, r: dict[str, float], failures: int, exact: bool) -> None:
    print(
        f"  {label:<22} register {r['per_second']:7.1f}/s ({failures} failed, 1..N exact: {exact})   "
        f"by alias {r['by_alias_ms']:6.2f} ms   alias move {r['promote_ms']:6.2f} ms",
        flush=True,
    )


MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from mlflow.tracking import MlflowClient

    http_uri = sys.argv[2]
    n, rounds, threads, calls = (int(a) for a in sys.argv[3:7])
    client = MlflowClient(tracking_uri=http_uri, registry_uri=http_uri)
    client.create_registered_model("bench")
    def register(i):
        try:
            return int(client.create_model_version("bench", f"s3://bucket/model-{i}").version)
        except Exception:
            return -1
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        numbers = list(pool.map(register, range(n)))
    elapsed = time.perf_counter() - started
    exact = sorted(numbers) == list(range(1, n + 1))
    client.set_registered_model_alias("bench", "champion", "1")
    def timed(fn):
        fn()
        times = []
        for _ in range(rounds):
            t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
        return statistics.median(times)
    def by_alias():
        for _ in range(calls):
            client.get_model_version_by_alias("bench", "champion")
    def promote():
        for i in range(calls):
            client.set_registered_model_alias("bench", "champion", str(1 + i % 2))
    print(json.dumps({"per_second": n / elapsed, "by_alias_ms": timed(by_alias) / calls * 1000,
                      "promote_ms": timed(promote) / calls * 1000, "failures": numbers.count(-1),
                      "exact": exact}))
    """
)


def bench_mlflow(python: str, postgres_admin: str, n_versions: int) -> dict[str, float] | None:
    args = [str(n_versions), str(ROUNDS), str(THREADS), str(CALLS)]
    result = mlflow_run(python, postgres_admin, MLFLOW_SCRIPT, args, timeout=1800)
    if result is None:
        return None
    _print("MLflow (PostgreSQL)", result, int(result["failures"]), bool(result["exact"]))
    return {k: float(result[k]) for k in ("per_second", "by_alias_ms", "promote_ms")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    args = parser.parse_args()
    print(
        f"registry: {args.versions} versions of one model from {THREADS} threads; single calls: median of "
        f"{ROUNDS} rounds of {CALLS}"
    )
    bench_tracklane("Tracklane (SQLite)", [], args.versions)
    if not args.postgres_uri:
        print("  PostgreSQL and MLflow skipped: give --postgres-uri or TRACKLANE_TEST_POSTGRES_URI")
        return
    with scratch_database(args.postgres_uri) as uri:
        ours = bench_tracklane("Tracklane (PostgreSQL)", ["--backend-store-uri", uri], args.versions)
    mlflow = bench_mlflow(args.mlflow_python, args.postgres_uri, args.versions)
    if mlflow:
        print(
            f"  ratio on PostgreSQL (MLflow time / Tracklane time): register "
            f"{ours['per_second'] / mlflow['per_second']:.1f}x, by alias "
            f"{mlflow['by_alias_ms'] / ours['by_alias_ms']:.1f}x, alias move "
            f"{mlflow['promote_ms'] / ours['promote_ms']:.1f}x"
        )


if __name__ == "__main__":
    main()
