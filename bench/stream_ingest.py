"""Server-side metric ingest: raw gRPC StreamMetrics with prebuilt batches, against LogBatch in the same run.

    python -m bench.stream_ingest [--points 2000000] [--batch 10000] [--keys 10] [--window 4]
                                  [--streams 100] [--stream-processes 4]
                                  [--postgres-uri postgresql+psycopg://...]

Batches (10,000 points over 10 keys by default) are built and serialised before the clock starts,
so the figures are the server's: decode, check, commit, ack. ``--window`` batches may be
unacknowledged at once (a client sender's window). Printed: points/s from the first batch sent to
the last ack, and per-batch ack latency (send to ack) p50/p99. The baseline is LogBatch with the
same batches as unary calls (10,000 metrics per call), sequential, in the same run.

Then ``--streams`` concurrent streams (one run each, batches of 1,000 points, window 4) from
``--stream-processes`` client processes (asyncio in each, a connection per process), started
together: aggregate points/s, ack latency p50/p99, the server's RSS sampled over the run, and
whether every run holds exactly the points sent.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import numpy as np

from bench._harness import scratch_database, tracklane_server
from tracklane.v1 import tracking_pb2, tracking_pb2_grpc

STREAM_METHOD = "/tracklane.v1.TrackingService/StreamMetrics"
LOG_BATCH_METHOD = "/tracklane.v1.TrackingService/LogBatch"


def stream_batches(run_id: str, points: int, batch: int, keys: int) -> list[bytes]:
    """Serialised StreamMetricsRequests: per batch, ``batch // keys`` steps of every key."""
    names = [f"metric_{k}" for k in range(keys)]
    steps_per_batch = batch // keys
    writer_id = f"bench-{uuid.uuid4().hex[:12]}"
    out = []
    for sequence, first in enumerate(range(0, points // keys, steps_per_batch), start=1):
        steps = np.repeat(np.arange(first, first + steps_per_batch, dtype=np.int64), keys)
        request = tracking_pb2.StreamMetricsRequest(
            run_id=run_id, writer_id=writer_id, sequence=sequence, keys=names
        )
        request.key_indices.extend(np.tile(np.arange(keys, dtype=np.uint32), steps_per_batch))
        request.values.extend(np.sin(steps / 1000.0))
        request.steps.extend(steps)
        request.timestamps_ms.extend(steps + 1_700_000_000_000)
        out.append(request.SerializeToString())
    return out


def log_batches(run_id: str, points: int, batch: int, keys: int) -> list[bytes]:
    """The same points as serialised LogBatchRequests."""
    out = []
    steps_per_batch = batch // keys
    for first in range(0, points // keys, steps_per_batch):
        request = tracking_pb2.LogBatchRequest(run_id=run_id)
        for step in range(first, first + steps_per_batch):
            for k in range(keys):
                request.metrics.add(
                    key=f"metric_{k}", value=np.sin(step / 1000.0), step=step, timestamp_ms=step + 1
                )
        out.append(request.SerializeToString())
    return out


def run_stream(channel: grpc.Channel, batches: list[bytes], window: int) -> tuple[float, list[float]]:
    """Seconds from the first send to the last ack, and each batch's ack latency."""
    call = channel.stream_stream(
        STREAM_METHOD,
        request_serializer=None,
        response_deserializer=tracking_pb2.StreamMetricsResponse.FromString,
    )
    room = threading.Semaphore(window)
    sent_at: list[float] = []

    def requests() -> Iterator[bytes]:
        for data in batches:
            room.acquire()
            sent_at.append(time.perf_counter())
            yield data

    latencies = []
    started = time.perf_counter()
    for i, ack in enumerate(call(requests(), timeout=600)):
        latencies.append(time.perf_counter() - sent_at[i])
        room.release()
        if ack.HasField("error") or ack.duplicate:
            raise RuntimeError(f"batch {ack.sequence} not applied: {ack}")
    return time.perf_counter() - started, latencies


def run_log_batch(channel: grpc.Channel, batches: list[bytes]) -> tuple[float, list[float]]:
    call = channel.unary_unary(
        LOG_BATCH_METHOD,
        request_serializer=None,
        response_deserializer=tracking_pb2.LogBatchResponse.FromString,
    )
    latencies = []
    started = time.perf_counter()
    for data in batches:
        sent = time.perf_counter()
        call(data, timeout=600)
        latencies.append(time.perf_counter() - sent)
    return time.perf_counter() - started, latencies


async def run_concurrent(target: str, batches: list[list[bytes]], window: int) -> tuple[float, list[float]]:
    """Every run's batches on its own stream, all at once; (seconds to the last ack, ack latencies)."""
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.stream_stream(
            STREAM_METHOD,
            request_serializer=None,
            response_deserializer=tracking_pb2.StreamMetricsResponse.FromString,
        )

        async def one(mine: list[bytes]) -> None:
            room = asyncio.Semaphore(window)
            sent_at: list[float] = []

            async def requests() -> AsyncIterator[bytes]:
                for data in mine:
                    await room.acquire()
                    sent_at.append(time.perf_counter())
                    yield data

            i = 0
            async for ack in call(requests(), timeout=600):
                latencies.append(time.perf_counter() - sent_at[i])
                i += 1
                room.release()
                if ack.HasField("error") or ack.duplicate:
                    raise RuntimeError(f"batch {ack.sequence} not applied: {ack}")

        started = time.perf_counter()
        await asyncio.gather(*(one(mine) for mine in batches))
        return time.perf_counter() - started, latencies


def server_rss_mb(port: int) -> float | None:
    """The RSS of the server process listening on ``port`` (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    for proc in psutil.process_iter(["cmdline"]):
        if f"127.0.0.1:{port}" in " ".join(proc.info["cmdline"] or ()):
            return float(proc.memory_info().rss) / 2**20
    return None


def _stream_worker(
    target: str, run_ids: list[str], per_stream: int, keys: int, start: Any, results: Any
) -> None:
    """(A client process) its runs' streams, all at once, once every process is ready."""
    batches = [stream_batches(run_id, per_stream, 1000, keys) for run_id in run_ids]
    start.wait()
    results.put(asyncio.run(run_concurrent(target, batches, 4)))


def bench_concurrent(uri: str, stub: tracking_pb2_grpc.TrackingServiceStub, args: argparse.Namespace) -> None:
    per_stream = max(1000, args.points // args.streams)
    run_ids = [
        str(stub.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id) for _ in range(args.streams)
    ]
    port = int(uri.rsplit(":", 1)[1])
    processes = max(1, min(args.stream_processes, args.streams))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    results: Any = ctx.Queue()
    workers = [
        ctx.Process(
            target=_stream_worker,
            args=(uri.removeprefix("grpc://"), run_ids[i::processes], per_stream, args.keys, start, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait()
    started = time.perf_counter()
    rss: list[float] = []
    done: list[tuple[float, list[float]]] = []
    while len(done) < processes:  # sample the server's memory while the streams run
        sample = server_rss_mb(port)
        if sample is not None:
            rss.append(sample)
        try:
            done.append(results.get(timeout=0.5))
        except Exception:  # queue.Empty: keep sampling
            continue
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    latencies = [latency for _, mine in done for latency in mine]
    label = f"{args.streams} streams, {processes} processes"
    report(label, per_stream * args.streams, seconds, latencies, None)
    exact = all(
        len(
            stub.GetMetricHistory(
                tracking_pb2.GetMetricHistoryRequest(run_id=run_id, key="metric_0", page_size=1_000_000)
            ).series.steps
        )
        == per_stream // args.keys
        for run_id in run_ids
    )
    if rss:
        picks = [rss[round(i * (len(rss) - 1) / 9)] for i in range(10)] if len(rss) >= 10 else rss
        memory = "server RSS over the run (MB): " + " ".join(f"{r:.0f}" for r in picks)
    else:
        memory = "server RSS: (psutil missing)"
    print(f"    {'':<32} {memory}")
    print(f"    {'':<32} every run stored exactly once: {'yes' if exact else 'NO'}")


def report(label: str, points: int, seconds: float, latencies: list[float], baseline: float | None) -> float:
    rate = points / seconds
    p50 = statistics.median(latencies) * 1000
    p99 = float(np.percentile(latencies, 99)) * 1000
    ratio = f"  x{rate / baseline:5.1f} LogBatch" if baseline else ""
    print(f"    {label:<32} {rate / 1e6:6.2f} M points/s   ack p50 {p50:6.1f} ms  p99 {p99:6.1f} ms{ratio}")
    return rate


def bench(label: str, settings: list[str], args: argparse.Namespace) -> None:
    print(f"  {label}")
    with tracklane_server(["--max-message-bytes", str(256 << 20), *settings]) as uri:
        channel = grpc.insecure_channel(uri.removeprefix("grpc://"))
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)

        def new_run() -> str:
            return str(stub.CreateRun(tracking_pb2.CreateRunRequest()).run.info.run_id)

        warm = stream_batches(new_run(), args.batch * 4, args.batch, args.keys)
        run_stream(channel, warm, args.window)  # connections, plans, caches
        base_points = max(args.batch, args.points // 10)
        base_s, base_lat = run_log_batch(channel, log_batches(new_run(), base_points, args.batch, args.keys))
        baseline = report(f"LogBatch ({args.batch} per call)", base_points, base_s, base_lat, None)
        for window in sorted({1, args.window}):
            batches = stream_batches(new_run(), args.points, args.batch, args.keys)
            seconds, latencies = run_stream(channel, batches, window)
            report(f"StreamMetrics (window {window})", args.points, seconds, latencies, baseline)
        if args.streams:
            bench_concurrent(uri, stub, args)
        channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--streams", type=int, default=100, help="concurrent streams; 0 to skip")
    parser.add_argument("--stream-processes", type=int, default=4, help="client processes for --streams")
    parser.add_argument("--postgres-uri", default=os.environ.get("TRACKLANE_TEST_POSTGRES_URI", ""))
    args = parser.parse_args()
    print(f"StreamMetrics ingest: {args.points} points in batches of {args.batch} over {args.keys} keys")
    bench("SQLite", [], args)
    if args.postgres_uri:
        with scratch_database(args.postgres_uri) as uri:
            bench("PostgreSQL", ["--backend-store-uri", uri], args)
    else:
        print("  PostgreSQL: skipped (give --postgres-uri or set TRACKLANE_TEST_POSTGRES_URI)")


if __name__ == "__main__":
    main()
