"""The stock ``mlflow`` client against Tracklane's MLflow REST API and against MLflow's own server.

Both servers on the same PostgreSQL (a scratch database each), artifacts in a local folder each;
MLflow's server with 4 workers as BENCHMARK-NOTES.md runs it, Tracklane's with one process. The
same client code (run in MLflow's virtualenv) times, per round, both systems in alternating
order (load on a shared machine swings a sequential comparison 2x):

  log_batch x1000   MlflowClient.log_batch of 1,000 metrics per call, 20 calls: points/s
  log_metric sync   mlflow.log_metric, 200 synchronous calls: ms per call
  history 100k      MlflowClient.get_metric_history of one key with 100,000 points: s
  search 10k        mlflow.search_runs over 10,000 runs (filtered, ordered, 1,000 results): s
  artifact up/down  a 256 MiB file through the artifact proxy (log_artifact, download_artifacts): MiB/s

    python -m bench.mlflow_rest [--postgres-uri URI] [--mlflow-python PATH] [--runs 10000] [--rounds 3]

Seeding (the 100k points, the 10k runs) is not timed: Tracklane's over gRPC, MLflow's through its
own SQL store. Prints each figure's median per system and the ratio, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from statistics import median

import tracklane
from bench._harness import MLFLOW_PYTHON, free_port, mlflow_db_uri, mlflow_server, process, scratch_database
from tracklane.entities import Metric, Param

FILTER = "metrics.m1 > 0.5 and params.p1 = 'a'"
HISTORY_POINTS = 100_000
ARTIFACT_MIB = 256

# Run in MLflow's virtualenv: argv URI ARTIFACT_PATH HISTORY_RUN_ID SEARCH_EXPERIMENT_ID; prints timings.
WORKLOAD = textwrap.dedent(
    """
    import json, os, sys, tempfile, time
    import mlflow
    from mlflow.entities import Metric
    uri, artifact, history_run, search_experiment = sys.argv[1:5]
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    out = {}
    experiment = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(experiment).info.run_id
    now = int(time.time() * 1000)
    batches = [[Metric("loss", i * 0.001, now, b * 1000 + i) for i in range(1000)] for b in range(20)]
    started = time.perf_counter()
    for batch in batches:
        client.log_batch(run, metrics=batch)
    out["log_batch_points_per_s"] = 20_000 / (time.perf_counter() - started)
    with mlflow.start_run(experiment_id=experiment):
        started = time.perf_counter()
        for i in range(200):
            mlflow.log_metric("sync", i, step=i)
        out["log_metric_ms"] = (time.perf_counter() - started) / 200 * 1000
        started = time.perf_counter()
        mlflow.log_artifact(artifact)
        out["upload_mib_per_s"] = os.path.getsize(artifact) / 2**20 / (time.perf_counter() - started)
        artifact_run = mlflow.active_run().info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        name = os.path.basename(artifact)
        mlflow.artifacts.download_artifacts(run_id=artifact_run, artifact_path=name, dst_path=tmp)
        out["download_mib_per_s"] = os.path.getsize(artifact) / 2**20 / (time.perf_counter() - started)
    started = time.perf_counter()
    points = client.get_metric_history(history_run, "h")
    out["history_s"] = time.perf_counter() - started
    out["history_points"] = len(points)
    started = time.perf_counter()
    found = mlflow.search_runs([search_experiment], FILTER, order_by=["metrics.m1 DESC"], max_results=1000)
    out["search_s"] = time.perf_counter() - started
    out["search_rows"] = len(found)
    print(json.dumps(out))
    """
).replace("FILTER", repr(FILTER))

# Seeds MLflow through its SQL store (not timed): argv DB_URI RUNS; prints the two ids.
MLFLOW_SEED = textwrap.dedent(
    """
    import json, random, sys, time
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    client = MlflowClient(sys.argv[1])
    runs = int(sys.argv[2])
    history = client.create_run(client.create_experiment("history-seed")).info.run_id
    for start in range(0, HISTORY, 1000):
        client.log_batch(history, metrics=[Metric("h", i * 0.5, 1, i) for i in range(start, start + 1000)])
    search = client.create_experiment("search-seed")
    for i in range(runs):
        rng = random.Random(i)
        run = client.create_run(search, start_time=1_700_000_000_000 + i).info.run_id
        client.log_batch(run, metrics=[Metric(f"m{j}", rng.random(), 1, 0) for j in range(1, 6)],
                         params=[Param(f"p{j}", rng.choice("abcd")) for j in range(1, 6)])
    print(json.dumps({"history": history, "search": search}))
    """
).replace("HISTORY", str(HISTORY_POINTS))


def seed_tracklane(uri: str, runs: int) -> tuple[str, str]:
    with tracklane.Client(uri) as client:
        history = client.create_run(client.create_experiment("history-seed")).info.run_id
        for start in range(0, HISTORY_POINTS, 10_000):
            client.log_batch(
                history, metrics=[Metric("h", i * 0.5, i, 1) for i in range(start, start + 10_000)]
            )
        search = client.create_experiment("search-seed")

        def one(i: int) -> None:
            rng = random.Random(i)
            run_id = client.create_run(search, start_time=1_700_000_000_000 + i).info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(f"m{j}", rng.random(), 0, 1) for j in range(1, 6)],
                params=[Param(f"p{j}", rng.choice("abcd")) for j in range(1, 6)],
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(runs)))
    return history, search


def run_workload(python: str, uri: str, artifact: str, history: str, search: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLANE_", "PYTHON"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", GIT_PYTHON_REFRESH="quiet")
    done = subprocess.run(
        [python, "-c", WORKLOAD, uri, artifact, history, search],
        capture_output=True,
        text=True,
        timeout=3600,
        env=env,
        check=False,
    )
    if done.returncode:
        sys.exit(f"workload failed against {uri}:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


FIGURES = [
    ("log_batch x1000 (points/s)", "log_batch_points_per_s", True),
    ("log_metric sync (ms/call)", "log_metric_ms", False),
    ("history 100k (s)", "history_s", False),
    ("search 10k runs (s)", "search_s", False),
    (f"artifact {ARTIFACT_MIB} MiB up (MiB/s)", "upload_mib_per_s", True),
    (f"artifact {ARTIFACT_MIB} MiB down (MiB/s)", "download_mib_per_s", True),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.postgres_uri:
        sys.exit("--postgres-uri (or TRACKLANE_TEST_POSTGRES_URI) is required: both servers use PostgreSQL")
    if not Path(args.mlflow_python).exists():
        sys.exit(f"no MLflow virtualenv at {args.mlflow_python}")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        artifact = tmp / "blob.bin"
        with artifact.open("wb") as f:
            for _ in range(ARTIFACT_MIB):
                f.write(os.urandom(2**20))
        tracklane_db = stack.enter_context(scratch_database(args.postgres_uri))
        mlflow_db = mlflow_db_uri(stack.enter_context(scratch_database(args.postgres_uri)))
        grpc_port, http_port = free_port(), free_port()
        argv = [sys.executable, "-m", "tracklane_server", "server", "--bind", f"127.0.0.1:{grpc_port}"]
        argv += ["--http-bind", f"127.0.0.1:{http_port}", "--data-dir", str(tmp / "tracklane")]
        argv += ["--backend-store-uri", tracklane_db, "--log-level", "WARNING"]
        stack.enter_context(process(argv, grpc_port))
        mlflow_uri = stack.enter_context(mlflow_server(args.mlflow_python, mlflow_db))
        tracklane_uri = f"http://127.0.0.1:{http_port}"
        print(
            f"seeding {HISTORY_POINTS:,} history points and {args.runs:,} runs in each system...", flush=True
        )
        seeded = {"Tracklane": seed_tracklane(f"grpc://127.0.0.1:{grpc_port}", args.runs)}
        out = subprocess.run(
            [args.mlflow_python, "-c", MLFLOW_SEED, mlflow_db, str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
            timeout=7200,
        )
        ids = json.loads(out.stdout.strip().splitlines()[-1])
        seeded["MLflow"] = (ids["history"], ids["search"])
        uris = {"Tracklane": tracklane_uri, "MLflow": mlflow_uri}
        results: dict[str, list[dict[str, float]]] = {"Tracklane": [], "MLflow": []}
        for r in range(args.rounds):
            order = ["Tracklane", "MLflow"] if r % 2 == 0 else ["MLflow", "Tracklane"]
            for system in order:
                history, search = seeded[system]
                results[system].append(
                    run_workload(args.mlflow_python, uris[system], str(artifact), history, search)
                )
            print(f"round {r + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})", flush=True)
    for system, rounds in results.items():
        assert all(x["history_points"] == HISTORY_POINTS for x in rounds), (system, rounds)
        assert len({x["search_rows"] for x in rounds}) == 1, (system, rounds)
    one, five, fifteen = os.getloadavg()
    print(
        f"\nmlflow {args.mlflow_python} client, same PostgreSQL, median of {args.rounds} interleaved rounds"
    )
    print(f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores\n")
    print(f"{'':34} {'Tracklane':>12} {'MLflow':>12} {'Tracklane ahead':>16}")
    for label, key, higher_is_better in FIGURES:
        ours = median(x[key] for x in results["Tracklane"])
        theirs = median(x[key] for x in results["MLflow"])
        ratio = ours / theirs if higher_is_better else theirs / ours
        print(f"{label:34} {ours:12.3f} {theirs:12.3f} {ratio:15.2f}x")


if __name__ == "__main__":
    main()
