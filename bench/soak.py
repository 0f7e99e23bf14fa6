"""Soak: a fixed-length mixed load on one real server (PostgreSQL + MinIO), watching for errors,
lost points, latency and a growing server.

    eval "$(cat /tmp/svc.env)"       # TRACKLANE_TEST_POSTGRES_URI and TRACKLANE_TEST_S3_*
    python -m bench.soak [--seconds 180] [--streams 3] [--sample-seconds 10]

The load, all at once for ``--seconds``:
  streams:    N training processes, each logging two metrics with the fluent ``log_metric`` (the
              buffered StreamMetrics path) at a steady rate, then ending its run
  searches:   search_runs with a metric filter, search_experiments
  artifacts:  2-4 MiB uploads (log_bytes), downloads (read_artifact, checked byte for byte), listings
  registry:   create_model_version, set_registered_model_alias, get_model_version_by_alias

Prints errors (target 0), lost points (target 0: every stream's stored history against what it
logged), p50/p99 latency per RPC, throughput per kind, and the server's RSS every
``--sample-seconds`` with start/end/max and the least-squares slope after the warm-up (target:
flat). Loopback only; the machine may be shared, so the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psutil
from minio import Minio

import tracklane
from bench import _harness
from bench.artifacts import child_pid, scratch_bucket

MiB = 1024 * 1024
KEYS = ("loss", "acc")
WARM_UP_SECONDS = 30.0  # RSS before this is the server filling its pools and caches


def expected_value(worker: int, key: str, step: int) -> float:
    """What stream ``worker`` logs for ``key`` at ``step``; the check recomputes it."""
    return step * 0.001 + worker if key == "loss" else -float(step) - worker


def stream_worker(
    uri: str, experiment_id: str, worker: int, seconds: float, rate: int, spool: str, out: Any
) -> None:
    """One training process: ``rate`` steps per second of both keys for ``seconds``, then end_run."""
    try:
        tracklane.set_tracking_uri(uri)
        tracklane.configure_metrics(spool_dir=spool, flush_timeout=120)
        run = tracklane.start_run(experiment_id=experiment_id, run_name=f"soak-stream-{worker}")
        step = 0
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            for _ in range(max(0, int(elapsed * rate) - step)):
                for key in KEYS:
                    tracklane.log_metric(key, expected_value(worker, key, step), step=step)
                step += 1
            time.sleep(0.01)
        flush_started = time.monotonic()
        tracklane.end_run()
        out.put(
            {
                "worker": worker,
                "run_id": run.info.run_id,
                "steps": step,
                "flush_s": time.monotonic() - flush_started,
            }
        )
    except Exception as exc:  # reported, counted as an error
        out.put({"worker": worker, "error": f"{type(exc).__name__}: {exc}"})


@dataclass
class Tally:
    """Latencies per RPC and errors, shared by the load threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    bytes_moved: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, rpc: str, kind: str, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, timed under ``rpc``; None (and an error noted) if it raised."""
        started = time.perf_counter()
        try:
            result = call(*args)
        except Exception as exc:
            with self.lock:
                self.errors.append(f"{rpc}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[rpc].append(elapsed)
            self.counts[kind] += 1
        return result


def search_load(client: tracklane.Client, tally: Tally, experiment_id: str, stop: threading.Event) -> None:
    while not stop.wait(0.05):
        tally.timed("SearchRuns", "searches", client.search_runs, [experiment_id], "metrics.loss >= 0")
        tally.timed("SearchExperiments", "searches", client.search_experiments)


def artifact_load(client: tracklane.Client, tally: Tally, run_id: str, stop: threading.Event) -> None:
    rng = np.random.default_rng(7)
    i = 0
    while not stop.wait(0.2):
        data = rng.bytes(int(rng.integers(2 * MiB, 4 * MiB)))
        path = f"soak/blob-{i % 20}.bin"  # rewrites over time: old objects are replaced, not piled up
        if tally.timed("UploadArtifact", "artifacts", client.log_bytes, run_id, data, path) is None:
            continue
        back = tally.timed("DownloadArtifact", "artifacts", client.read_artifact, run_id, path)
        if back is not None and hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
            with tally.lock:
                tally.errors.append(f"DownloadArtifact: {path} came back different")
        with tally.lock:
            tally.bytes_moved += 2 * len(data)
        if i % 5 == 0:
            tally.timed("ListArtifacts", "artifacts", client.list_artifacts, run_id, "soak")
        i += 1


def registry_load(client: tracklane.Client, tally: Tally, model: str, stop: threading.Event) -> None:
    i = 0
    while not stop.wait(0.05):
        version = tally.timed(
            "CreateModelVersion",
            "registry",
            client.create_model_version,
            model,
            f"s3://soak/model-{i}",
        )
        if version is not None:
            number = version.version
            tally.timed("SetAlias", "registry", client.set_registered_model_alias, model, "champion", number)
        got = tally.timed("GetByAlias", "registry", client.get_model_version_by_alias, model, "champion")
        if got is not None and version is not None and got.version != version.version:
            with tally.lock:
                tally.errors.append(f"GetByAlias: {got.version}, expected {version.version}")
        i += 1


def sample_rss(pid: int, every: float, stop: threading.Event, samples: list[tuple[float, float]]) -> None:
    proc = psutil.Process(pid)
    started = time.monotonic()
    while True:
        samples.append((time.monotonic() - started, proc.memory_info().rss / MiB))
        if stop.wait(every):
            samples.append((time.monotonic() - started, proc.memory_info().rss / MiB))
            return


def lost_points(client: tracklane.Client, results: list[dict[str, Any]]) -> tuple[int, int]:
    """(points logged, points missing or wrong) over every stream and key."""
    logged = lost = 0
    for r in results:
        if "run_id" not in r:
            continue
        steps = np.arange(r["steps"])
        for key in KEYS:
            want = np.array([expected_value(r["worker"], key, s) for s in range(r["steps"])])
            got = client.get_metric_history(r["run_id"], key)
            logged += len(steps)
            got_steps, got_values = np.asarray(got.steps), np.asarray(got.values)
            if len(got_steps) == len(steps) and (got_steps == steps).all() and (got_values == want).all():
                continue
            found = dict(zip(got_steps.tolist(), got_values.tolist(), strict=True))
            lost += sum(1 for s, v in zip(steps.tolist(), want.tolist(), strict=True) if found.get(s) != v)
            lost += max(0, len(got_steps) - len(steps))  # extra points count too
    return logged, lost


def report(
    seconds: float,
    tally: Tally,
    results: list[dict[str, Any]],
    logged: int,
    lost: int,
    rss: list[tuple[float, float]],
) -> None:
    stream_errors = [r["error"] for r in results if "error" in r]
    print(f"\nerrors: {len(tally.errors) + len(stream_errors)} (target 0)")
    for line in (tally.errors + stream_errors)[:20]:
        print(f"  {line}")
    print(f"lost points: {lost} of {logged} logged (target 0)")
    print("\nlatency per RPC (ms):          calls      p50      p99      max")
    for rpc, times in sorted(tally.latencies.items()):
        ms = np.asarray(times) * 1000
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"  {rpc:<26} {len(ms):>8} {p50:>8.1f} {p99:>8.1f} {ms.max():>8.1f}")
    print("\nthroughput:")
    print(f"  metric points  {logged / seconds:>10.0f} /s over {len(results)} streams")
    flushes = [r["flush_s"] for r in results if "flush_s" in r]
    if flushes:
        print(f"  end_run flush  max {max(flushes):.2f} s (acks still due when the stream stopped)")
    for kind, n in sorted(tally.counts.items()):
        print(f"  {kind:<14} {n / seconds:>10.1f} calls/s")
    print(f"  artifact bytes {tally.bytes_moved / MiB / seconds:>10.1f} MiB/s (up + down)")
    print("\nserver RSS (MiB) every sample: " + " ".join(f"{m:.0f}" for _, m in rss))
    values = [m for _, m in rss]
    steady = [(t, m) for t, m in rss if t >= WARM_UP_SECONDS]
    half = len(steady) // 2
    print(
        f"  start {values[0]:.0f}  end {values[-1]:.0f}  max {max(values):.0f}  slope after the "
        f"{WARM_UP_SECONDS:.0f} s warm-up: {slope(steady):+.2f} MiB/min, over its second half "
        f"{slope(steady[half:]):+.2f} MiB/min (target ~0)"
    )


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares MiB per minute; NaN with fewer than three samples."""
    if len(samples) < 3:
        return float("nan")
    return float(np.polyfit([t / 60 for t, _ in samples], [m for _, m in samples], 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--streams", type=int, default=3, help="0 for no metric streams")
    parser.add_argument(
        "--load",
        type=lambda text: set(text.split(",")),
        default={"searches", "artifacts", "registry"},
        help="the unary loads to run, comma-separated (default: searches,artifacts,registry)",
    )
    parser.add_argument("--rate", type=int, default=2000, help="steps per second per stream (2 points each)")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    parser.add_argument("--s3-endpoint-url", default=os.environ.get("TRACKLANE_TEST_S3_ENDPOINT_URL", ""))
    parser.add_argument("--s3-access-key-id", default=os.environ.get("TRACKLANE_TEST_S3_ACCESS_KEY_ID", ""))
    parser.add_argument(
        "--s3-secret-access-key", default=os.environ.get("TRACKLANE_TEST_S3_SECRET_ACCESS_KEY", "")
    )
    args = parser.parse_args()
    if not args.postgres_uri or not args.s3_endpoint_url:
        sys.exit("bench.soak: set TRACKLANE_TEST_POSTGRES_URI and TRACKLANE_TEST_S3_* (see /tmp/svc.env)")
    endpoint = urlsplit(args.s3_endpoint_url)
    minio = Minio(
        endpoint.netloc, args.s3_access_key_id, args.s3_secret_access_key, secure=endpoint.scheme == "https"
    )
    print(
        f"soak: {args.seconds:.0f} s, {args.streams} streams x {2 * args.rate} points/s; load average before "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        flush=True,
    )
    with (
        _harness.scratch_database(args.postgres_uri) as database,
        scratch_bucket(minio) as bucket,
        tempfile.TemporaryDirectory(prefix="bench-soak-") as scratch,
    ):
        settings = [
            "--backend-store-uri", database,
            "--artifact-root", f"s3://{bucket}/soak",
            "--s3-endpoint-url", args.s3_endpoint_url,
            "--s3-access-key-id", args.s3_access_key_id,
            "--s3-secret-access-key", args.s3_secret_access_key,
        ]  # fmt: skip
        with _harness.tracklane_server(settings) as uri, tracklane.Client(uri, timeout=120) as client:
            server_pid = child_pid("tracklane_server")
            experiment_id = client.create_experiment(f"soak-{uuid.uuid4().hex[:6]}")
            run_id = client.create_run(experiment_id).info.run_id
            client.create_registered_model("soak-model")
            tally = Tally()
            stop = threading.Event()
            rss: list[tuple[float, float]] = []
            ctx = multiprocessing.get_context("spawn")
            out = ctx.Queue()
            streams = [
                ctx.Process(
                    target=stream_worker,
                    args=(
                        uri,
                        experiment_id,
                        w,
                        args.seconds,
                        args.rate,
                        str(Path(scratch) / f"spool-{w}"),
                        out,
                    ),
                )
                for w in range(args.streams)
            ]
            loads = {
                "searches": (search_load, experiment_id),
                "artifacts": (artifact_load, run_id),
                "registry": (registry_load, "soak-model"),
            }
            threads = [threading.Thread(target=sample_rss, args=(server_pid, args.sample_seconds, stop, rss))]
            threads += [
                threading.Thread(target=load, args=(client, tally, target, stop))
                for kind, (load, target) in loads.items()
                if kind in args.load
            ]
            started = time.monotonic()
            for p in streams:
                p.start()
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            stop.set()
            for t in threads:
                t.join()
            results = [out.get(timeout=300) for _ in streams]
            for p in streams:
                p.join(60)
            elapsed = time.monotonic() - started
            logged, lost = lost_points(client, results)
        report(elapsed, tally, results, logged, lost, rss)
    print("load average after " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
