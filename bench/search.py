"""SearchRuns: Tracklane (SQLite, PostgreSQL) next to MLflow's tracking server on the same PostgreSQL.

Seeds N runs (5 params, 5 metrics each) per system, then times, median of several rounds:
  filtered:   `metrics.m1 > 0.5 and params.p1 = 'a'` ordered by metrics.m1 DESC, first 1,000 results
  unfiltered: the first 1,000 runs, default order

    python -m bench.search --postgres-uri postgresql+psycopg://tracklane:tracklane@127.0.0.1:5432/tracklane \
        [--runs 10000] [--mlflow-python ~/.cache/tracklane-bench/mlflow-venv/bin/python]

MLflow is optional (skipped with a note when its virtualenv is missing): `python3 -m venv VENV &&
VENV/bin/pip install mlflow psycopg2-binary`. Everything binds to 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import random
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
from tracklane.entities import Metric, Param

FILTER = "metrics.m1 > 0.5 and params.p1 = 'a'"
ORDER = ["metrics.m1 DESC"]


def seed_values(i: int) -> tuple[dict[str, str], dict[str, float]]:
    rng = random.Random(i)
    params = {f"p{j}": rng.choice("abcd") for j in range(1, 6)}
    metrics = {f"m{j}": rng.random() for j in range(1, 6)}
    return params, metrics


def bench_tracklane(label: str, settings: list[str], n_runs: int) -> dict[str, float]:
    with tracklane_server(settings) as uri:
        client = tracklane.Client(uri)
        experiment_id = client.create_experiment("search-bench")
        started = time.perf_counter()

        def seed(i: int) -> None:
            params, metrics = seed_values(i)
            run_id = client.create_run(experiment_id, start_time=1_700_000_000_000 + i).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(k, v, 0, 1) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(seed, range(n_runs)))
        seeded = time.perf_counter() - started
        filtered, n_filtered = median_seconds(
            lambda: len(client.search_runs(experiment_id, FILTER, order_by=ORDER, max_results=1000))
        )
        unfiltered, n_all = median_seconds(lambda: len(client.search_runs(experiment_id, max_results=1000)))
        client.close()
    print(
        f"  {label:<22} seeded {n_runs} runs in {seeded:6.1f} s   filtered {filtered * 1000:8.1f} ms "
        f"({n_filtered} runs)   unfiltered {unfiltered * 1000:8.1f} ms ({n_all} runs)",
        flush=True,
    )
    return {"filtered": filtered, "unfiltered": unfiltered}


MLFLOW_SCRIPT = textwrap.dedent(
    """
    import json, random, statistics, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    db_uri, http_uri, n_runs, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = MlflowClient(tracking_uri=db_uri)  # seeding through MLflow's own store (setup, not timed)
    experiment_id = store.create_experiment("search-bench")
    def seed(i):
        rng = random.Random(i)
        params = {f"p{j}": rng.choice("abcd") for j in range(1, 6)}
        metrics = {f"m{j}": rng.random() for j in range(1, 6)}
        run = store.create_run(experiment_id, start_time=1_700_000_000_000 + i)
        store.log_batch(run.info.run_id, metrics=[Metric(k, v, 1, 0) for k, v in metrics.items()],
                        params=[Param(k, v) for k, v in params.items()])
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(seed, range(n_runs)))
    seeded = time.perf_counter() - started
    client = MlflowClient(tracking_uri=http_uri)
    def timed(fn):
        fn()
        times = []
        for _ in range(rounds):
            t = time.perf_counter(); n = fn(); times.append(time.perf_counter() - t)
        return statistics.median(times), n
    filtered = timed(lambda: len(client.search_runs([experiment_id], "metrics.m1 > 0.5 and params.p1 = 'a'",
                                                     order_by=["metrics.m1 DESC"], max_results=1000)))
    unfiltered = timed(lambda: len(client.search_runs([experiment_id], max_results=1000)))
    print(json.dumps({"seeded": seeded, "filtered": filtered, "unfiltered": unfiltered}))
    """
)


def bench_mlflow(python: str, postgres_admin: str, n_runs: int) -> dict[str, float] | None:
    result = mlflow_run(python, postgres_admin, MLFLOW_SCRIPT, [str(n_runs), str(ROUNDS)])
    if result is None:
        return None
    (filtered, n_filtered), (unfiltered, n_all) = result["filtered"], result["unfiltered"]
    print(
        f"  {'MLflow (PostgreSQL)':<22} seeded {n_runs} runs in {result['seeded']:6.1f} s   filtered "
        f"{filtered * 1000:8.1f} ms ({n_filtered} runs)   "
        f"unfiltered {unfiltered * 1000:8.1f} ms ({n_all} runs)"
    )
    return {"filtered": filtered, "unfiltered": unfiltered}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    args = parser.parse_args()
    print(f"search_runs over {args.runs} runs, 5 params + 5 metrics each; median of {ROUNDS} rounds")
    results = {"Tracklane (SQLite)": bench_tracklane("Tracklane (SQLite)", [], args.runs)}
    if args.postgres_uri:
        with scratch_database(args.postgres_uri) as uri:
            results["Tracklane (PostgreSQL)"] = bench_tracklane(
                "Tracklane (PostgreSQL)", ["--backend-store-uri", uri], args.runs
            )
        mlflow = bench_mlflow(args.mlflow_python, args.postgres_uri, args.runs)
        if mlflow:
            ours = results["Tracklane (PostgreSQL)"]
            filtered = mlflow["filtered"] / ours["filtered"]
            unfiltered = mlflow["unfiltered"] / ours["unfiltered"]
            print(
                f"  ratio MLflow/Tracklane on PostgreSQL: filtered {filtered:.1f}x, "
                f"unfiltered {unfiltered:.1f}x  (target: filtered >= 10x)"
            )
    else:
        print("  PostgreSQL and MLflow skipped: give --postgres-uri or TRACKLANE_TEST_POSTGRES_URI")


if __name__ == "__main__":
    main()
