"""What gRPC Python alone costs to move artifact-sized messages: the floor under proxied transfers.

A bare grpc.aio server (as Tracklane's) and a sync client (as Tracklane's), raw-bytes handlers, no
storage, no files, no hashing: the client streams 1 MiB messages up (as UploadArtifact) and the
server streams 2 MiB messages down (as DownloadArtifact). Prints MiB/s and the CPU seconds per GiB
of each side, so the proxied figures of bench.artifacts can be split into gRPC's share and ours.

    python -m bench.grpc_floor [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import Any

import grpc

from bench.artifacts import cpu_seconds, load

MiB = 1024 * 1024
UP_CHUNK = 1 * MiB  # as the client's CHUNK_BYTES
DOWN_CHUNK = 2 * MiB  # as the server's DOWNLOAD_CHUNK_BYTES
# As the server's and the client's channels: big messages, a fixed 8 MiB window.
OPTIONS = [
    ("grpc.max_receive_message_length", 64 * MiB),
    ("grpc.max_send_message_length", 64 * MiB),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", 8 * MiB),
]


def serve(size: int, conn: Connection) -> None:
    """The server process: sends its port, then answers each "cpu" message with its CPU seconds."""

    async def upload(requests: AsyncIterator[bytes], context: Any) -> bytes:
        received = 0
        async for message in requests:
            received += len(message)
        return received.to_bytes(8, "big")

    async def download(request: bytes, context: Any) -> AsyncIterator[bytes]:
        block = os.urandom(DOWN_CHUNK)
        for _ in range(size // DOWN_CHUNK):
            yield b"".join((b"\x12", block))  # framed with one copy, as the real server does

    async def main() -> None:
        server = grpc.aio.server(options=OPTIONS)
        handlers = {
            "Upload": grpc.stream_unary_rpc_method_handler(upload),
            "Download": grpc.unary_stream_rpc_method_handler(download),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Floor", handlers),))
        conn.send(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, conn.recv) == "cpu":
            conn.send(cpu_seconds())
        await server.stop(None)

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MiB
    gib = size / (1024 * MiB)
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.Process(target=serve, args=(size, theirs), daemon=True)
    process.start()
    port = ours.recv()

    def server_cpu() -> float:
        ours.send("cpu")
        return float(ours.recv())

    print(f"{args.size_mib} MiB, {args.rounds} rounds; {load()}", flush=True)
    figures: dict[str, list[tuple[float, float, float]]] = {"up": [], "down": []}
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as channel:
        upload = channel.stream_unary(
            "/bench.Floor/Upload", request_serializer=None, response_deserializer=None
        )
        download = channel.unary_stream(
            "/bench.Floor/Download", request_serializer=None, response_deserializer=None
        )
        block = os.urandom(UP_CHUNK)
        upload(iter([block] * 8))  # warm-up: connection, threads
        for _ in range(args.rounds):
            for way in ("up", "down"):
                server_before, client_before = server_cpu(), cpu_seconds()
                started = time.perf_counter()
                if way == "up":
                    upload(iter([block] * (size // UP_CHUNK)))
                else:
                    for _message in download(b""):
                        pass
                seconds = time.perf_counter() - started
                client = cpu_seconds() - client_before
                figures[way].append((seconds, client / gib, (server_cpu() - server_before) / gib))
    ours.send("stop")
    process.join(10)
    print(f"\n{'gRPC alone (median)':<24}{'MiB/s':>9}{'client CPU s/GiB':>18}{'server CPU s/GiB':>18}")
    for way, rows in figures.items():
        seconds, client, server = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{way:<24}{args.size_mib / seconds:>9.0f}{client:>18.2f}{server:>18.2f}")
    print(load())


if __name__ == "__main__":
    main()
