"""Denial of service by memory: the server's peak RSS while hostile clients push it, next to a
bystander client's latency.

    python -m bench.dos [--cases preauth,large,heavy,watch,page,downsample] [--source CHECKOUT]

Each case runs against a fresh ``tracklane server`` process (auth on, SQLite, a copy of one seeded
data folder holding a run with ``--points`` points, 5 M by default) on a loopback port:

  preauth     ``--clients`` LogBatch calls of 60 MiB at once without a token, ``--rounds`` times
  large       the same with a valid token (a message over the limit)
  heavy       ``--clients`` x 2 LogBatch calls at once with a valid token that stay inside every
              limit (3.9 MiB: under the default message limit): half with 60 params of 64 KiB,
              half with 100,000 metrics, each to a run of its own
  watch       10 WatchRun(start_step=min) on the big run, each reading one message and then stalling
  page        ``--clients`` x 2 GetMetricHistory(page_size=1,000,000) on the big run at once
  downsample  the same with max_points=1,000 (a chart of the whole run)

It prints per case the peak growth of the server's RSS over its idle size (target: < 256 MiB
whatever the clients do), the RSS left 3 s after the case (memory returned?), what the hostile calls
got back, and the p50/p99 latency of a bystander calling GetRun every 20 ms meanwhile. A server
past ``--rss-cap-mib`` is killed (the figure then reads ">= cap"): the machine is shared.

``--source`` runs the server of another checkout (its ``server/`` and ``client/python/`` on
PYTHONPATH, C extension built in place), e.g. ``--source /work/main`` for "before" figures;
the clients are always this checkout's. Loopback only, bounded in calls and time.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

import tracklane
from bench._harness import free_port
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc

MiB = 1024 * 1024
TOKEN = "tlk_bench-dos-bootstrap-token-0123456789abcdef"
CASES = ("preauth", "large", "heavy", "watch", "page", "downsample")
INT64_MIN = -(2**63)
LOG_BATCH = "/tracklane.v1.TrackingService/LogBatch"
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", 256 * MiB),
    ("grpc.max_receive_message_length", 256 * MiB),
]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


class RssWatch:
    """Samples a process's RSS every 10 ms; kills it past ``cap`` bytes (the machine is shared)."""

    def __init__(self, pid: int, cap: int) -> None:
        self.pid = pid
        self.cap = cap
        self.peak = 0
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssWatch:
        self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                rss = rss_bytes(self.pid)
            except (OSError, KeyError):
                return
            self.peak = max(self.peak, rss)
            if rss >= self.cap and not self.killed:
                self.killed = True
                os.kill(self.pid, signal.SIGKILL)


class Bystander:
    """GetRun every 20 ms on a channel of its own; latencies and failures."""

    def __init__(self, target: str, run_id: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = tracking_pb2_grpc.TrackingServiceStub(self._channel)
        self._request = tracking_pb2.GetRunRequest(run_id=run_id)
        self._metadata = (("authorization", f"Bearer {TOKEN}"),)
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bystander:
        self._stub.GetRun(self._request, metadata=self._metadata, timeout=30)  # connected and warm
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._channel.close()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            started = time.perf_counter()
            try:
                self._stub.GetRun(self._request, metadata=self._metadata, timeout=10)
                self.latencies.append(time.perf_counter() - started)
            except grpc.RpcError:
                self.failures += 1

    def summary(self) -> str:
        if not self.latencies:
            return f"no answer ({self.failures} failed)"
        ms = sorted(x * 1000 for x in self.latencies)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        failed = f", {self.failures} failed" if self.failures else ""
        return f"p50 {statistics.median(ms):7.1f} ms  p99 {p99:7.1f} ms ({len(ms)} calls{failed})"


@dataclass
class Server:
    pid: int
    target: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def server(data_dir: Path, source: str, log: Path) -> Iterator[Server]:
    """``tracklane server`` with auth on over ``data_dir``, until the block ends."""
    port = free_port()
    env = {**os.environ, "TRACKLANE_AUTH_BOOTSTRAP_TOKEN": TOKEN}
    if source:
        env["PYTHONPATH"] = f"{source}/server:{source}/client/python"
    argv = [sys.executable, "-m", "tracklane_server", "server", "--bind", f"127.0.0.1:{port}"]
    argv += ["--data-dir", str(data_dir), "--auth", "true", "--log-level", "WARNING"]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env, cwd=source or None)
    try:
        target = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(target) as channel:
            while True:
                try:
                    grpc.channel_ready_future(channel).result(timeout=1)
                    break
                except grpc.FutureTimeoutError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start; see {log}") from None
        yield Server(proc.pid, target, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Seeded:
    data_dir: Path
    big_run: str
    small_run: str
    heavy_runs: list[str] = field(default_factory=list)


def seed(root: Path, source: str, points: int, heavy_runs: int, log: Path) -> Seeded:
    """A data folder with a run of ``points`` points of key "loss", a small run and empty runs."""
    data_dir = root / "seed"
    with server(data_dir, source, log) as s, tracklane.Client(f"grpc://{s.target}", token=TOKEN) as client:
        big = client.create_run(run_name="big").info.run_id
        small = client.create_run(run_name="small").info.run_id
        heavy = [client.create_run(run_name=f"heavy-{i}").info.run_id for i in range(heavy_runs)]
        with client.metric_stream() as stream:
            step = 0
            while step < points:
                n = min(1_000_000, points - step)
                steps = np.arange(step, step + n, dtype=np.int64)
                stream.log_metric_array(big, "loss", np.sin(steps / 1000.0), steps=steps)
                step += n
        client.log_metric(small, "m", 1.0, step=1)
        got = client.get_metric_history(big, "loss", max_points=8)
        assert len(got.steps) > 0, "seeding failed"
    return Seeded(data_dir, big, small, heavy)


def log_batch_bytes(run_id: str, target_bytes: int) -> bytes:
    """A serialized LogBatchRequest of about ``target_bytes`` made of small metrics (costly to decode)."""
    one = tracking_pb2.LogBatchRequest(
        metrics=[tracking_pb2.Metric(key="loss", value=0.5, step=123456, timestamp_ms=1_700_000_000_000)]
    ).SerializeToString()
    head = tracking_pb2.LogBatchRequest(run_id=run_id).SerializeToString()
    return head + one * (target_bytes // len(one))


def heavy_bytes(run_id: str, target_bytes: int, metrics: bool) -> bytes:
    """A valid LogBatchRequest of at most ``target_bytes``: 100,000 metrics, or 64 KiB params."""
    if metrics:
        request = tracking_pb2.LogBatchRequest(
            run_id=run_id,
            metrics=[
                tracking_pb2.Metric(key="loss", value=i / 7, step=i, timestamp_ms=1_700_000_000_000 + i)
                for i in range(100_000)
            ],
        )
    else:
        value = "v" * 65_000
        count = min(1000, target_bytes // (len(value) + 16))
        request = tracking_pb2.LogBatchRequest(
            run_id=run_id, params=[tracking_pb2.Param(key=f"p{i}", value=value) for i in range(count)]
        )
    body = request.SerializeToString()
    assert len(body) <= target_bytes, len(body)
    return body


def codes(results: list[Any]) -> str:
    counted = collections.Counter(results)
    return ", ".join(f"{n} {code}" for code, n in counted.most_common())


def raw_calls(target: str, method: str, bodies: list[bytes], token: str | None) -> list[str]:
    """Each body sent at once as one unary call on its own channel; the status names."""
    metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def one(body: bytes) -> str:
        with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
            call = channel.unary_unary(method)
            try:
                call(body, metadata=metadata, timeout=60)
                return "OK"
            except grpc.RpcError as err:
                return str(err.code().name)  # type: ignore[attr-defined]

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def attack(case: str, s: Server, seeded: Seeded, args: argparse.Namespace) -> str:
    """Runs one case's hostile clients to the end; returns what they got."""
    auth = (("authorization", f"Bearer {TOKEN}"),)
    if case in ("preauth", "large"):
        body = log_batch_bytes(seeded.small_run, 60 * MiB)
        got: list[str] = []
        for _ in range(args.rounds):
            got += raw_calls(s.target, LOG_BATCH, [body] * args.clients, None if case == "preauth" else TOKEN)
        return codes(got)
    if case == "heavy":
        heavy = int(3.9 * MiB)
        bodies = [heavy_bytes(run, heavy, i % 2 == 1) for i, run in enumerate(seeded.heavy_runs)]
        return codes(raw_calls(s.target, LOG_BATCH, bodies, TOKEN))
    if case == "watch":
        channels = [grpc.insecure_channel(s.target, options=CHANNEL_OPTIONS) for _ in range(10)]
        calls, got = [], []
        try:
            for channel in channels:
                stub = tracking_pb2_grpc.TrackingServiceStub(channel)
                call = stub.WatchRun(
                    tracking_pb2.WatchRunRequest(run_id=seeded.big_run, start_step=INT64_MIN),
                    metadata=auth,
                    timeout=120,
                )
                calls.append(call)
            for call in calls:
                try:
                    first = next(call)  # one message, then never read again
                    got.append(f"{sum(len(x.steps) for x in first.series)} points then stalled")
                except grpc.RpcError as err:
                    got.append(err.code().name)  # type: ignore[attr-defined]
            time.sleep(args.stall_seconds)
        finally:
            for call in calls:
                call.cancel()
            for channel in channels:
                channel.close()
        return codes(got)
    if case in ("page", "downsample"):

        def history(_: int) -> str:
            with grpc.insecure_channel(s.target, options=CHANNEL_OPTIONS) as channel:
                stub = tracking_pb2_grpc.TrackingServiceStub(channel)
                request = tracking_pb2.GetMetricHistoryRequest(run_id=seeded.big_run, key="loss")
                if case == "page":
                    request.page_size = 1_000_000
                else:
                    request.max_points = 1000
                try:
                    reply = stub.GetMetricHistory(request, metadata=auth, timeout=120)
                    return f"OK ({len(reply.series.steps)} points)"
                except grpc.RpcError as err:
                    return str(err.code().name)  # type: ignore[attr-defined]

        with ThreadPoolExecutor(args.clients * 2) as pool:
            return codes(list(pool.map(history, range(args.clients * 2))))
    raise ValueError(case)


def run_case(case: str, seeded: Seeded, root: Path, args: argparse.Namespace, log: Path) -> str:
    data_dir = root / f"case-{case}"
    shutil.copytree(seeded.data_dir, data_dir)
    try:
        with server(data_dir, args.source, log) as s:
            with Bystander(s.target, seeded.small_run) as warm:  # pools, caches and plans filled
                time.sleep(0.5)
            del warm
            idle, idle_anon = rss_bytes(s.pid), rss_bytes(s.pid, "RssAnon")
            with RssWatch(s.pid, args.rss_cap_mib * MiB) as watch, Bystander(s.target, seeded.small_run) as b:
                started = time.perf_counter()
                outcome = attack(case, s, seeded, args)
                seconds = time.perf_counter() - started
            after = "-"
            if not watch.killed and s.process.poll() is None:
                time.sleep(3)
                kept = (rss_bytes(s.pid) - idle) / MiB
                anon = (rss_bytes(s.pid, "RssAnon") - idle_anon) / MiB
                after = f"{kept:+7.0f} MiB ({anon:+.0f} MiB anonymous)"
            peak = (watch.peak - idle) / MiB
            peak_text = f"{peak:+7.0f} MiB"
            if watch.killed:
                peak_text = f">= {args.rss_cap_mib} MiB (killed at the cap)"
            return (
                f"{case:<10} idle {idle / MiB:5.0f} MiB  peak {peak_text}  after 3 s {after}  "
                f"{seconds:5.1f} s\n{'':<11}hostile calls: {outcome}\n{'':<11}bystander: {b.summary()}"
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--source", default="", help="checkout whose server to run (default: installed)")
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stall-seconds", type=float, default=10.0)
    parser.add_argument("--rss-cap-mib", type=int, default=4096)
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    source = os.path.abspath(args.source) if args.source else ""
    args.source = source
    with tempfile.TemporaryDirectory(prefix="tracklane-dos-") as tmp:
        root = Path(tmp)
        log = root / "server.log"
        print(f"server: {source or 'this checkout'}; {load()}")
        started = time.perf_counter()
        seeded = seed(root, source, args.points, args.clients * 2, log)
        print(f"seeded a run of {args.points:,} points in {time.perf_counter() - started:.1f} s")
        for case in cases:
            print(run_case(case, seeded, root, args, log), flush=True)
        print(load())
        tail = log.read_text(errors="replace").splitlines()[-5:]
        if tail:
            print("server log (last lines):\n  " + "\n  ".join(tail))


if __name__ == "__main__":
    main()
