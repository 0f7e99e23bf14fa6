"""Artifact transfer: a 1 GiB file up and down through Tracklane (proxied and direct), next to the
``minio`` client's own fput/fget on the same MinIO and MLflow's proxied artifacts, in the same run.

    eval "$(.ci/services.sh start)"      # or TRACKLANE_TEST_S3_* pointing at a MinIO
    python -m bench.artifacts [--size-mib 1024] [--mlflow-python VENV/bin/python]

Prints MiB/s, ratios to the raw MinIO client, the growth of peak RSS (VmHWM, reset before each
transfer through /proc/PID/clear_refs) of the client (this process) and of the Tracklane server, and
the CPU seconds per GiB each of them spent (all threads; for MLflow, its client process and every
process of its server; for MinIO with ``--minio-pid``). On a shared machine CPU seconds move less
than MiB/s with other processes' load, but still by +-30% on a busy 2-core VM: compare medians.
``--only`` picks transfers while iterating.
Targets: proxied >= 0.7x and direct >= 0.95x the raw client; RSS growth < 64 MiB; faster than MLflow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from minio import Minio

import tracklane
from bench import _harness

MiB = 1024 * 1024
TARGETS = {"proxied": 0.7, "direct": 0.95}
KINDS = ("minio", "proxied", "direct", "mlflow")
RSS_LIMIT_MIB = 64

# MLflow's own client, one process per direction so that its server's CPU can be read in between.
MLFLOW_UP = """
import json, sys, time
from mlflow.tracking import MlflowClient

uri, path = sys.argv[1:3]
client = MlflowClient(uri)
run_id = client.create_run(client.create_experiment(f"bench-{time.time()}")).info.run_id
print("ready", flush=True)
sys.stdin.readline()
started, cpu = time.perf_counter(), time.process_time()
client.log_artifact(run_id, path)
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"run_id": run_id, "seconds": seconds, "cpu": cpu}))
"""
MLFLOW_DOWN = """
import json, sys, time
import mlflow.artifacts

uri, run_id, name, dst = sys.argv[1:5]
print("ready", flush=True)
sys.stdin.readline()
started, cpu = time.perf_counter(), time.process_time()
mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=dst, tracking_uri=uri)
print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}))
"""


@dataclass
class Result:
    name: str
    seconds: float
    client_rss_mib: float | None = None
    server_rss_mib: float | None = None
    client_cpu_s: float | None = None
    server_cpu_s: float | None = None
    store_cpu_s: float | None = None


class PeakRss:
    """Peak resident memory growth of a process over a block, from /proc (Linux)."""

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self.growth_mib = 0.0

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(name)

    def __enter__(self) -> PeakRss:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self._start = self._field("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth_mib = (self._field("VmHWM") - self._start) / MiB


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process, all its threads (this one when None)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    name: str, fn: Callable[[], object], server_pid: int | None = None, store_pid: int | None = None
) -> Result:
    client = PeakRss()
    server = PeakRss(server_pid) if server_pid else None
    with client:
        if server is not None:
            server.__enter__()
        cpu = cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0
        store_before = cpu_seconds(store_pid) if store_pid else 0.0
        started = time.perf_counter()
        fn()
        seconds = time.perf_counter() - started
        client_cpu = cpu_seconds() - cpu[0]
        server_cpu = cpu_seconds(server_pid) - cpu[1] if server_pid else None
        store_cpu = cpu_seconds(store_pid) - store_before if store_pid else None
        if server is not None:
            server.__exit__()
    return Result(
        name,
        seconds,
        client.growth_mib,
        server.growth_mib if server else None,
        client_cpu,
        server_cpu,
        store_cpu,
    )


def load() -> str:
    """The load average: on a shared machine, figures mean little without it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def make_file(path: Path, size: int) -> None:
    # Random bytes: nothing on the way may compress them.
    block = os.urandom(16 * MiB)
    with path.open("wb") as out:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            out.write(piece)
            written += len(piece)


def child_pid(marker: str) -> int:
    """The pid of this process's child whose command line contains ``marker``."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and marker in cmdline:
            return int(entry.name)
    raise RuntimeError(f"no child process running {marker}")


@contextmanager
def scratch_bucket(minio: Minio) -> Iterator[str]:
    bucket = f"bench-artifacts-{uuid.uuid4().hex[:10]}"
    minio.make_bucket(bucket)
    try:
        yield bucket
    finally:
        for upload in minio._list_multipart_uploads(bucket).uploads:
            minio._abort_multipart_upload(bucket, upload.object_name, str(upload.upload_id))
        for item in minio.list_objects(bucket, recursive=True):
            minio.remove_object(bucket, str(item.object_name))
        minio.remove_bucket(bucket)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--s3-endpoint-url", default=os.environ.get("TRACKLANE_TEST_S3_ENDPOINT_URL", ""))
    parser.add_argument("--s3-access-key-id", default=os.environ.get("TRACKLANE_TEST_S3_ACCESS_KEY_ID", ""))
    parser.add_argument(
        "--s3-secret-access-key", default=os.environ.get("TRACKLANE_TEST_S3_SECRET_ACCESS_KEY", "")
    )
    parser.add_argument("--mlflow-python", default=_harness.MLFLOW_PYTHON)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--minio-pid",
        type=int,
        default=0,
        help="the MinIO process, to print its CPU seconds per GiB too (includes anyone else's requests)",
    )
    parser.add_argument(
        "--only",
        default=",".join(KINDS),
        help=f"comma-separated transfers to run, among {','.join(KINDS)} (default: all); "
        "targets are judged only where both sides ran",
    )
    args = parser.parse_args()
    kinds = {kind.strip() for kind in args.only.split(",") if kind.strip()}
    if not kinds <= set(KINDS):
        sys.exit(f"bench.artifacts: --only takes {','.join(KINDS)}, not {args.only!r}")
    if not args.s3_endpoint_url:
        sys.exit("bench.artifacts: set TRACKLANE_TEST_S3_* or --s3-endpoint-url (a MinIO to write to)")
    size = args.size_mib * MiB
    endpoint = urlsplit(args.s3_endpoint_url)
    minio = Minio(
        endpoint.netloc, args.s3_access_key_id, args.s3_secret_access_key, secure=endpoint.scheme == "https"
    )
    results: list[Result] = []
    store_pid = args.minio_pid or None
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as scratch, scratch_bucket(minio) as bucket:
        work = Path(scratch)
        source = work / "file.bin"
        make_file(source, size)
        print(
            f"{args.size_mib} MiB file, {args.rounds} rounds; MinIO at {args.s3_endpoint_url}; {load()}",
            flush=True,
        )

        def fresh(name: str) -> Path:
            path = work / name
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            return path

        settings = [
            "--artifact-root",
            f"s3://{bucket}/tracklane",
            "--s3-endpoint-url",
            args.s3_endpoint_url,
            "--s3-access-key-id",
            args.s3_access_key_id,
            "--s3-secret-access-key",
            args.s3_secret_access_key,
        ]
        with contextlib.ExitStack() as stack:
            uri = stack.enter_context(_harness.tracklane_server(settings))
            client = stack.enter_context(tracklane.Client(uri, timeout=600))
            server_pid = child_pid("tracklane_server")
            mlflow_uri = start_mlflow(args, bucket, stack) if "mlflow" in kinds else ""
            mlflow_pid = child_pid("mlflow") if mlflow_uri else 0
            run_id = client.create_run().info.run_id
            # Warm-up: connections, thread pools, the multipart path (above one 8 MiB part).
            warm = work / "warm.bin"
            make_file(warm, 32 * MiB)
            for direct in (False, True):
                client.log_artifact(run_id, warm, "warm", direct=direct)
                client.download_artifacts(run_id, "warm/warm.bin", fresh("warm"), direct=direct)
            minio.fput_object(bucket, "raw/warm.bin", str(warm))
            # Rounds interleave every kind of transfer (MLflow's too), so load from other processes
            # (2 shared cores) hits them alike; each figure is the median over the rounds.
            for number in range(args.rounds):
                start = len(results)
                if "minio" in kinds:
                    results.append(
                        timed(
                            "minio fput",
                            lambda: minio.fput_object(bucket, "raw/file.bin", str(source)),
                            store_pid=store_pid,
                        )
                    )
                    results.append(
                        timed(
                            "minio fget",
                            lambda: minio.fget_object(bucket, "raw/file.bin", str(fresh("raw") / "f")),
                            store_pid=store_pid,
                        )
                    )
                    minio.remove_object(bucket, "raw/file.bin")
                for direct in (False, True):
                    mode = "direct" if direct else "proxied"
                    if mode not in kinds:
                        continue
                    results.append(
                        timed(
                            f"tracklane {mode} up",
                            lambda d=direct, m=mode: client.log_artifact(run_id, source, m, direct=d),  # type: ignore[misc]
                            server_pid,
                            store_pid,
                        )
                    )
                    results.append(
                        timed(
                            f"tracklane {mode} down",
                            lambda d=direct, m=mode: client.download_artifacts(  # type: ignore[misc]
                                run_id, f"{m}/file.bin", fresh("down"), direct=d
                            ),
                            server_pid,
                            store_pid,
                        )
                    )
                    client.delete_artifacts(run_id, mode)
                if mlflow_uri:
                    results += run_mlflow(
                        args.mlflow_python, mlflow_uri, source, fresh("mlflow"), mlflow_pid, store_pid
                    )
                print(
                    f"round {number + 1} ({load()}): "
                    + ", ".join(f"{r.name} {size / MiB / r.seconds:.0f}" for r in results[start:]),
                    flush=True,
                )
            shutil.rmtree(work / "down", ignore_errors=True)
            shutil.rmtree(work / "raw", ignore_errors=True)
    report(results, args.size_mib, size)
    print(load())


def start_mlflow(args: argparse.Namespace, bucket: str, stack: contextlib.ExitStack) -> str:
    """MLflow's server with proxied artifacts on the same MinIO; its URI, or "" when unavailable."""
    if not Path(args.mlflow_python).exists():
        print(f"MLflow skipped: no virtualenv at {args.mlflow_python}")
        return ""
    # MLflow's server stores proxied artifacts with boto3, configured only by environment.
    os.environ.update(
        MLFLOW_S3_ENDPOINT_URL=args.s3_endpoint_url,
        AWS_ACCESS_KEY_ID=args.s3_access_key_id,
        AWS_SECRET_ACCESS_KEY=args.s3_secret_access_key,
    )
    db = stack.enter_context(tempfile.TemporaryDirectory())
    try:
        return str(
            stack.enter_context(
                _harness.mlflow_server(
                    args.mlflow_python,
                    f"sqlite:///{db}/mlflow.db",
                    extra=["--artifacts-destination", f"s3://{bucket}/mlflow"],
                )
            )
        )
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"MLflow skipped: its server did not start: {str(exc)[-1000:]}")
        return ""


def run_mlflow(
    python: str, uri: str, source: Path, dst: Path, server_pid: int, store_pid: int | None
) -> list[Result]:
    """One up and one down with MLflow's own client, in its virtualenv, each timed once its process
    has started and imported MLflow; the CPU of its server counts every process of the server's tree."""

    def one(name: str, script: str, argv: list[str]) -> tuple[Result, dict[str, Any]]:
        with subprocess.Popen(
            [python, "-c", script, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdin is not None
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"MLflow's client failed before the {name}")
            server_before = tree_cpu_seconds(server_pid)
            store_before = cpu_seconds(store_pid) if store_pid else 0.0
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out = proc.stdout.read()
            if proc.wait() != 0:
                raise RuntimeError(f"MLflow's client failed during the {name}")
        figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        result = Result(
            name,
            figures["seconds"],
            client_cpu_s=figures["cpu"],
            server_cpu_s=tree_cpu_seconds(server_pid) - server_before,
            store_cpu_s=cpu_seconds(store_pid) - store_before if store_pid else None,
        )
        return result, figures

    up, figures = one("mlflow proxied up", MLFLOW_UP, [uri, str(source)])
    down, _ = one("mlflow proxied down", MLFLOW_DOWN, [uri, figures["run_id"], source.name, str(dst)])
    return [up, down]


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants alive now (MLflow's server forks workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            total += cpu_seconds(current)
        todo += children.get(current, [])
    return total


def report(results: list[Result], size_mib: int, size: int) -> None:
    """Medians per transfer (time and CPU); RSS figures are the worst round."""
    names = list(dict.fromkeys(r.name for r in results))
    by_name: dict[str, Result] = {}
    for name in names:
        mine = [r for r in results if r.name == name]
        by_name[name] = Result(
            name,
            statistics.median(r.seconds for r in mine),
            max((r.client_rss_mib for r in mine if r.client_rss_mib is not None), default=None),
            max((r.server_rss_mib for r in mine if r.server_rss_mib is not None), default=None),
            _median([r.client_cpu_s for r in mine]),
            _median([r.server_cpu_s for r in mine]),
            _median([r.store_cpu_s for r in mine]),
        )
    gib = size / (1024 * MiB)
    print(
        f"\n{'transfer (median)':<24}{'MiB/s':>9}{'vs minio':>10}{'client RSS+':>13}{'server RSS+':>13}"
        f"{'client CPU s/GiB':>18}{'server CPU s/GiB':>18}{'MinIO CPU s/GiB':>17}"
    )
    for r in by_name.values():
        anchor = by_name.get("minio fput" if r.name.endswith(("up", "fput")) else "minio fget")
        versus = f"{anchor.seconds / r.seconds:.2f}x" if anchor else "-"
        # MLflow's client runs in its own process: its CPU comes from there, its RSS is not measured.
        elsewhere = "mlflow" in r.name
        client = f"{r.client_rss_mib:.0f} MiB" if r.client_rss_mib is not None and not elsewhere else "-"
        server = f"{r.server_rss_mib:.0f} MiB" if r.server_rss_mib is not None else "-"
        client_cpu = f"{r.client_cpu_s / gib:.2f}" if r.client_cpu_s is not None else "-"
        server_cpu = f"{r.server_cpu_s / gib:.2f}" if r.server_cpu_s is not None else "-"
        store_cpu = f"{r.store_cpu_s / gib:.2f}" if r.store_cpu_s is not None else "-"
        print(
            f"{r.name:<24}{size_mib / r.seconds:>9.0f}{versus:>10}{client:>13}{server:>13}"
            f"{client_cpu:>18}{server_cpu:>18}{store_cpu:>17}"
        )
    print("\ntargets:")
    for mode, target in TARGETS.items():
        for way, anchor_name in (("up", "minio fput"), ("down", "minio fget")):
            if anchor_name not in by_name or f"tracklane {mode} {way}" not in by_name:
                continue
            ratio = by_name[anchor_name].seconds / by_name[f"tracklane {mode} {way}"].seconds
            verdict = "ok" if ratio >= target else "MISSED"
            print(f"  {mode} {way}: {ratio:.2f}x the minio client (target >= {target}x) {verdict}")
    for r in by_name.values():
        if r.name.startswith("tracklane"):
            worst = max(r.client_rss_mib or 0, r.server_rss_mib or 0)
            verdict = "ok" if worst < RSS_LIMIT_MIB else "MISSED"
            print(f"  {r.name}: peak RSS growth {worst:.0f} MiB (limit {RSS_LIMIT_MIB}) {verdict}")
    for way in ("up", "down"):
        mlflow = by_name.get(f"mlflow proxied {way}")
        if mlflow is not None and f"tracklane proxied {way}" in by_name:
            ratio = mlflow.seconds / by_name[f"tracklane proxied {way}"].seconds
            print(f"  proxied {way}: {ratio:.2f}x MLflow's speed {'ok' if ratio > 1 else 'MISSED'}")


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


if __name__ == "__main__":
    main()
