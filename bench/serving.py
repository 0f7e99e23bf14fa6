"""Model serving: Tracklane REST and OIP gRPC against `mlflow models serve`, same models, same run.

    python -m bench.serving [--seconds 4] [--rounds 2] [--concurrency 16] [--workers 2]
                            [--mlflow-python ~/.cache/tracklane-bench/mlflow-venv/bin/python]

Two models, saved once by MLflow itself (``mlflow.sklearn.save_model``, cloudpickle) and served
from the same folders by both: iris LogisticRegression and a 200-tree RandomForest. For each model
and request size (1 row, 100 rows) the load generator (``hey`` for REST, ``ghz`` for gRPC; neither
written here, built with ``go install`` into ~/.cache/tracklane-bench/bin) drives each server for
``--seconds``; rounds interleave the servers so load on the machine hits them alike. Prints
requests/s, p50 and p99 (medians over rounds), the ratios to MLflow, and RSS per worker process.

Servers: MLflow (``--env-manager local``, ``--workers N``); Tracklane REST and OIP gRPC
(``--workers N``), and Tracklane with ``--max-batch-size 32`` (requests batched while the model
is busy). Targets: REST >= 2x MLflow's requests/s with a lower p99; gRPC ahead of REST.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench._harness import MLFLOW_PYTHON, free_port

BIN = Path.home() / ".cache" / "tracklane-bench" / "bin"
TOOLS = {"hey": "github.com/rakyll/hey@latest", "ghz": "github.com/bojand/ghz/cmd/ghz@latest"}
ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto" / "tracklane" / "serving" / "oip" / "open_inference.proto"
COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

SAVE = """
import sys
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
for name, clf in (
    ("logreg", LogisticRegression(max_iter=500)),
    ("forest", RandomForestClassifier(n_estimators=200, random_state=0)),
):
    clf.fit(X, y)
    mlflow.sklearn.save_model(
        clf, f"{sys.argv[1]}/{name}", serialization_format="cloudpickle",
        signature=infer_signature(X, clf.predict(X)),
    )
"""


def tool(name: str) -> str:
    """The load generator, built with `go install` into the bench cache on first use."""
    binary = BIN / name
    if not binary.exists():
        BIN.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "install", TOOLS[name]], check=True, env={**os.environ, "GOBIN": str(BIN)})
    return str(binary)


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def hey(url: str, body: Path, seconds: float, concurrency: int) -> Result:
    out = subprocess.run(
        [
            tool("hey"),
            "-z",
            f"{seconds}s",
            "-c",
            str(concurrency),
            "-m",
            "POST",
            "-T",
            "application/json",
            "-D",
            str(body),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def figure(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found.group(1)) if found else float("nan")  # no answer within the run

    rps, p50, p99 = (
        figure(r"Requests/sec:\s+([\d.]+)"),
        figure(r"50%+ in ([\d.]+) secs"),
        figure(r"99%+ in ([\d.]+) secs"),
    )
    codes = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}
    transport = out.split("Error distribution:", 1)[1] if "Error distribution:" in out else ""
    errors = sum(n for code, n in codes.items() if code != 200)
    errors += sum(int(n) for n in re.findall(r"\[(\d+)\]\s", transport))
    return Result(rps, p50 * 1000, p99 * 1000, errors)


def ghz(target: str, request: Path, seconds: float, concurrency: int, connections: int) -> Result:
    out = subprocess.run(
        [
            tool("ghz"),
            "--insecure",
            "--proto",
            str(PROTO),
            "-i",
            str(ROOT / "proto"),
            "--call",
            "inference.GRPCInferenceService.ModelInfer",
            "-B",
            str(request),
            "-z",
            f"{seconds}s",
            "-c",
            str(concurrency),
            "--connections",
            str(connections),
            "--format",
            "json",
            target,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    report = json.loads(out)
    latency = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    codes = report.get("statusCodeDistribution") or {}
    # ghz closes its connections when the duration is up: the calls then in flight end "transport is
    # closing" (at most one per concurrent worker); they are the tool's, not the server's.
    closing = sum(
        n for text, n in (report.get("errorDistribution") or {}).items() if "transport is closing" in text
    )
    errors = sum(codes.values()) - codes.get("OK", 0) - min(closing, concurrency)
    return Result(report["rps"], latency.get(50, 0.0), latency.get(99, 0.0), errors)


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


@contextmanager
def server(
    argv: list[str], port: int, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}
    )
    try:
        _wait_port(port, proc)
        deadline = time.monotonic() + 180
        while httpx.get(ready_url, timeout=5).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_per_worker(proc: subprocess.Popen[bytes]) -> list[float]:
    """MiB of each process under the server that loaded the model (the workers)."""
    import psutil

    procs = psutil.Process(proc.pid).children(recursive=True) or [psutil.Process(proc.pid)]
    return sorted(p.memory_info().rss / 2**20 for p in procs if p.is_running())


def bodies(tmp: Path) -> dict[int, tuple[Path, Path]]:
    """Per request size: the REST JSON body and the OIP request (serialized, raw tensors)."""
    from sklearn.datasets import load_iris

    from tracklane.serving.oip import open_inference_pb2 as pb

    X, _ = load_iris(return_X_y=True, as_frame=True)
    out = {}
    for rows in (1, 100):
        part = X.sample(rows, random_state=rows, replace=rows > len(X))
        rest = tmp / f"rest-{rows}.json"
        rest.write_text(
            json.dumps({"dataframe_split": {"columns": COLUMNS, "data": part.to_numpy().tolist()}})
        )
        request = pb.ModelInferRequest(model_name="MODEL")
        for column in COLUMNS:
            request.inputs.add(name=column, datatype="FP64", shape=[rows])
            request.raw_input_contents.append(np.ascontiguousarray(part[column].to_numpy(), "<f8").tobytes())
        grpc_path = tmp / f"grpc-{rows}.bin"
        grpc_path.write_bytes(request.SerializeToString())
        out[rows] = (rest, grpc_path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mlflow-python", default=MLFLOW_PYTHON)
    parser.add_argument("--models", default="logreg,forest")
    args = parser.parse_args()
    if not Path(args.mlflow_python).exists():
        sys.exit(f"MLflow's virtualenv is missing at {args.mlflow_python} (see bench/_harness.py)")
    mlflow_bin = Path(args.mlflow_python).parent
    print(
        f"load average at start {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores, "
        f"{args.workers} workers each, concurrency {args.concurrency}, "
        f"{args.seconds:g} s x {args.rounds} rounds"
    )
    results: dict[tuple[str, int, str], list[Result]] = {}
    rss: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="tracklane-bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([args.mlflow_python, "-c", SAVE, str(tmp)], check=True, timeout=600)
        requests = bodies(tmp)
        for model in args.models.split(","):
            folder = str(tmp / model)
            grpc_requests = {}
            for rows, (_, grpc_path) in requests.items():
                from tracklane.serving.oip import open_inference_pb2 as pb

                request = pb.ModelInferRequest.FromString(grpc_path.read_bytes())
                request.model_name = model
                grpc_requests[rows] = tmp / f"grpc-{model}-{rows}.bin"
                grpc_requests[rows].write_bytes(request.SerializeToString())
            ports = {name: free_port() for name in ("mlflow", "tracklane", "batched", "grpc", "grpc-batched")}
            tracklane = [
                sys.executable,
                "-m",
                "tracklane_server",
                "models",
                "serve",
                "-m",
                folder,
                "-w",
                str(args.workers),
            ]
            env_mlflow = {"PATH": f"{mlflow_bin}:{os.environ['PATH']}"}
            with (
                server(
                    [
                        str(mlflow_bin / "mlflow"),
                        "models",
                        "serve",
                        "-m",
                        folder,
                        "--env-manager",
                        "local",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(ports["mlflow"]),
                        "-w",
                        str(args.workers),
                    ],
                    ports["mlflow"],
                    f"http://127.0.0.1:{ports['mlflow']}/ping",
                    env_mlflow,
                ) as mlflow_proc,
                server(
                    [*tracklane, "-p", str(ports["tracklane"]), "--grpc-port", str(ports["grpc"])],
                    ports["tracklane"],
                    f"http://127.0.0.1:{ports['tracklane']}/ping",
                ) as tracklane_proc,
                server(
                    [
                        *tracklane,
                        "-p",
                        str(ports["batched"]),
                        "--grpc-port",
                        str(ports["grpc-batched"]),
                        "--max-batch-size",
                        "32",
                    ],
                    ports["batched"],
                    f"http://127.0.0.1:{ports['batched']}/ping",
                ) as batched_proc,
            ):
                for rows in requests:  # warm-up: connections, caches, the first model calls
                    for port in ("mlflow", "tracklane", "batched"):
                        url = f"http://127.0.0.1:{ports[port]}/invocations"
                        for _ in range(3):
                            httpx.post(
                                url,
                                content=requests[rows][0].read_bytes(),
                                timeout=120,
                                headers={"Content-Type": "application/json"},
                            ).raise_for_status()
                for round_ in range(args.rounds):
                    for rows in requests:
                        order = ["mlflow", "tracklane REST", "tracklane gRPC", "batched REST", "batched gRPC"]
                        if round_ % 2:
                            order.reverse()
                        for system in order:
                            url_port = {
                                "mlflow": "mlflow",
                                "tracklane REST": "tracklane",
                                "batched REST": "batched",
                            }.get(system)
                            if url_port:
                                result = hey(
                                    f"http://127.0.0.1:{ports[url_port]}/invocations",
                                    requests[rows][0],
                                    args.seconds,
                                    args.concurrency,
                                )
                            else:
                                grpc_port = ports["grpc" if system == "tracklane gRPC" else "grpc-batched"]
                                result = ghz(
                                    f"127.0.0.1:{grpc_port}",
                                    grpc_requests[rows],
                                    args.seconds,
                                    args.concurrency,
                                    2 * args.workers,
                                )
                            results.setdefault((model, rows, system), []).append(result)
                rss[(model, "mlflow")] = rss_per_worker(mlflow_proc)
                rss[(model, "tracklane")] = rss_per_worker(tracklane_proc)
                rss[(model, "batched")] = rss_per_worker(batched_proc)
            print(f"\n{model}  (load average {os.getloadavg()[0]:.2f})")
            print(
                f"  {'rows':>4}  {'server':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'errors':>6}  vs MLflow"
            )
            for rows in requests:
                base = statistics.median(r.rps for r in results[(model, rows, "mlflow")])
                for system in ("mlflow", "tracklane REST", "tracklane gRPC", "batched REST", "batched gRPC"):
                    runs = results[(model, rows, system)]
                    rps = statistics.median(r.rps for r in runs)
                    p50 = statistics.median(r.p50_ms for r in runs)
                    p99 = statistics.median(r.p99_ms for r in runs)
                    errors = sum(r.errors for r in runs)
                    print(
                        f"  {rows:>4}  {system:<16} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {errors:>6}  "
                        f"{rps / base:>5.2f}x"
                    )
            for name in ("mlflow", "tracklane", "batched"):
                print(f"  RSS per process, {name}: " + ", ".join(f"{m:.0f} MiB" for m in rss[(model, name)]))
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
