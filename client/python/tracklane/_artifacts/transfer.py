"""Moving artifact bytes: chunked gRPC streams through the server, or presigned HTTP straight to S3.

Files stream from and to disk in chunks (memory stays a few MiB whatever the size). Downloads go
to a hidden ``.<name>.tracklane-part`` file next to the destination and are renamed into place
once complete and verified; an interrupted download resumes from the byte it reached. Uploads
cannot resume (the server makes a file visible only when it is complete), so an upload interrupted
by UNAVAILABLE starts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import grpc
from tqdm import tqdm

from tracklane.exceptions import Internal, InvalidArgument, TracklaneError, Unavailable, from_rpc_error
from tracklane.v1 import artifacts_pb2
from tracklane.wire.artifacts import chunk_message, parse_download_message

__all__ = [
    "CHUNK_BYTES",
    "PROGRESS_THRESHOLD_BYTES",
    "FileInfo",
    "Progress",
    "download_direct",
    "download_proxied",
    "retrying",
    "upload_direct",
    "upload_proxied",
]

MiB = 1024 * 1024
# Upload chunks. Larger ones (2-3 MiB) saved no measurable CPU but raised the server's peak memory:
# a part holds on to every message it takes bytes from, whole.
CHUNK_BYTES = 1 * MiB
# Bars appear for transfers from this size on (when stderr is a terminal, or when asked).
PROGRESS_THRESHOLD_BYTES = 64 * MiB
# Whole attempts for an upload or a part; a download resumes this many times in a row without
# progress. Backing off 0.4 s, 0.8 s... up to 3 s: about 12 s in all, enough for a server restart.
ATTEMPTS = 6
# Direct uploads PUT this many parts at once (each streamed from the file, never held whole).
DIRECT_PARALLEL_PARTS = 4
_HTTP_BLOCK = MiB
_HASH_BLOCK = 4 * MiB
_PART_SUFFIX = ".tracklane-part"


@dataclass(frozen=True)
class FileInfo:
    """A file or folder among a run's artifacts (MLflow's ``FileInfo``, plus checksum and time).

    Attributes:
        path: Relative to the run's artifact root, ``/``-separated.
        is_dir: True for a folder.
        file_size: Bytes; None for a folder.
        sha256: Lowercase hex SHA-256, or ``""`` when the store does not know it.
        modify_time: Last write, epoch milliseconds; None when unknown.
    """

    path: str
    is_dir: bool
    file_size: int | None = None
    sha256: str = ""
    modify_time: int | None = None

    @classmethod
    def from_proto(cls, info: artifacts_pb2.FileInfo) -> FileInfo:
        return cls(
            path=info.path,
            is_dir=info.is_dir,
            file_size=None if info.is_dir else info.size,
            sha256=info.sha256,
            modify_time=info.modify_time.ToMilliseconds() if info.HasField("modify_time") else None,
        )


class Progress:
    """A tqdm bar over bytes, shown for large transfers in a terminal, or whenever ``show`` is True."""

    def __init__(self, total: int, description: str, show: bool | None) -> None:
        visible = show if show is not None else total >= PROGRESS_THRESHOLD_BYTES and sys.stderr.isatty()
        self._bar: tqdm[Any] | None = (
            tqdm(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
            if visible
            else None
        )

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def reset(self) -> None:
        if self._bar is not None:
            self._bar.reset()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def retrying(attempt: Callable[[], Any], what: str) -> Any:
    """Runs ``attempt`` until it does not raise Unavailable, ATTEMPTS times at most, backing off."""
    for number in range(1, ATTEMPTS + 1):
        try:
            return attempt()
        except Unavailable:
            if number == ATTEMPTS:
                raise
            time.sleep(min(0.2 * 2**number, 3.0))
    raise AssertionError(what)  # unreachable


# Through the server


def upload_proxied(
    upload: Any, run_id: str, source: Callable[[], IO[bytes]], size: int, path: str, progress: Progress
) -> FileInfo:
    """Streams a file (opened afresh by ``source`` on each attempt) to UploadArtifact.

    The size goes in the header and the server checks it; the server computes the SHA-256 (one
    pass over the bytes; hashing here too would cost the client a second one for nothing).
    """

    def attempt() -> FileInfo:
        progress.reset()

        def messages() -> Iterator[bytes]:
            yield artifacts_pb2.UploadArtifactRequest(
                header=artifacts_pb2.UploadHeader(run_id=run_id, path=path, size=size)
            ).SerializeToString()
            with source() as file:
                while chunk := file.read(CHUNK_BYTES):
                    progress.update(len(chunk))
                    yield chunk_message(chunk)

        try:
            response = upload(messages())
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return FileInfo.from_proto(response.file)

    result: FileInfo = retrying(attempt, "upload")
    return result


def download_proxied(
    download: Any, run_id: str, path: str, dst: str, show_progress: bool | None, verify: bool = False
) -> FileInfo:
    """Downloads one file to ``dst`` through DownloadArtifact, resuming from the last byte on errors.

    Args:
        download: The DownloadArtifact call, answering serialized messages (see _artifact_wire).
        verify: Check the stored SHA-256 (one more pass over the bytes).
    """
    state = _Download(dst, verify)
    progress: Progress | None = None
    failures = reached = 0
    try:
        while True:
            try:
                for raw in download(
                    artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path, offset=state.received)
                ):
                    info, chunk = parse_download_message(raw)
                    if info is not None:
                        state.check_same(FileInfo.from_proto(info))
                        if progress is None:
                            progress = Progress(state.size, os.path.basename(path), show_progress)
                            progress.update(state.received)
                    state.write(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
                break
            except grpc.RpcError as err:
                if state.received > reached:  # progress since the last failure: a fresh budget
                    failures, reached = 0, state.received
                error = from_rpc_error(err)
                # UNAVAILABLE and a torn stream (CANCELLED/INTERNAL from a dropped connection) resume.
                if not _resumable(err) or failures >= ATTEMPTS:
                    raise error from None
                failures += 1
                time.sleep(min(0.2 * 2**failures, 3.0))
        return state.finish()
    finally:
        state.close()
        if progress is not None:
            progress.close()


def _resumable(err: grpc.RpcError) -> bool:
    code = err.code() if isinstance(err, grpc.Call) else None
    return code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL) and (
        code is grpc.StatusCode.UNAVAILABLE or "stream" in (err.details() or "").lower()
    )


class _Download:
    """A download in progress: the ``.part`` file, bytes so far, running hash, what was promised."""

    def __init__(self, dst: str, verify: bool = False) -> None:
        self.dst = dst
        self._verify = verify
        self.temp = os.path.join(os.path.dirname(dst) or ".", f".{os.path.basename(dst)}{_PART_SUFFIX}")
        os.makedirs(os.path.dirname(self.temp) or ".", exist_ok=True)
        self._file: IO[bytes] | None = open(self.temp, "wb")  # noqa: SIM115 - closed in close()
        self.received = 0
        self._digest: Any = None  # hashlib's hash object, when there is a SHA-256 to check
        self.info: FileInfo | None = None

    @property
    def size(self) -> int:
        return (self.info.file_size or 0) if self.info else 0

    def check_same(self, info: FileInfo) -> None:
        """On resume, the file must be the one started on; else start over."""
        if self.info is not None and (info.file_size, info.sha256, info.modify_time) != (
            self.info.file_size,
            self.info.sha256,
            self.info.modify_time,
        ):
            raise Unavailable(f"{info.path!r} changed during the download; download it again")
        if self.info is None and info.sha256 and self._verify:
            self._digest = hashlib.sha256()
        self.info = info

    def write(self, chunk: bytes | memoryview) -> None:
        assert self._file is not None
        self._file.write(chunk)
        if self._digest is not None:
            self._digest.update(chunk)
        self.received += len(chunk)

    def finish(self) -> FileInfo:
        if self.info is None:
            raise Internal("the server sent no file description")
        if self.received != self.info.file_size:
            raise Internal(
                f"received {self.received} bytes of {self.info.path!r}, expected {self.info.file_size}"
            )
        if self._digest is not None and self._digest.hexdigest() != self.info.sha256:
            raise Internal(f"{self.info.path!r} arrived damaged (SHA-256 mismatch); download it again")
        assert self._file is not None
        self._file.close()
        self._file = None
        os.replace(self.temp, self.dst)
        return self.info

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)


# Straight to the object store


def _http() -> Any:
    import urllib3

    # One pool for all transfers; big send blocks (urllib3's default is 16 KiB) cut per-call overhead.
    global _POOL
    if _POOL is None:
        _POOL = urllib3.PoolManager(
            maxsize=DIRECT_PARALLEL_PARTS * 2,
            blocksize=_HTTP_BLOCK,
            retries=False,
            timeout=urllib3.Timeout(connect=10.0, read=300.0),
        )
    return _POOL


_POOL: Any = None


def upload_direct(
    call: Callable[[str, Any], Any], run_id: str, local_path: str, size: int, path: str, progress: Progress
) -> FileInfo:
    """CreatePresignedUpload, PUT the parts (a few at once), CompletePresignedUpload; aborts on failure.

    The SHA-256 is computed by one more thread reading the file in order while the parts are sent
    (hashlib releases the GIL), and given on completion so the server records it with the file.

    Args:
        call: ``call(method_name, request)`` runs a unary ArtifactService RPC with typed errors.
    """
    created = call(
        "CreatePresignedUpload",
        artifacts_pb2.CreatePresignedUploadRequest(run_id=run_id, path=path, size=size),
    )
    stop = threading.Event()
    try:
        pool = ThreadPoolExecutor(DIRECT_PARALLEL_PARTS + 1, thread_name_prefix="tracklane-put")
        try:
            digest = pool.submit(_sha256_of, local_path, size, stop)
            etags = list(pool.map(lambda part: _put_part(local_path, part, progress), created.parts))
            sha256 = digest.result()
        finally:
            stop.set()
            pool.shutdown(cancel_futures=True)  # after a failure, parts not yet started never start
        completed = call(
            "CompletePresignedUpload",
            artifacts_pb2.CompletePresignedUploadRequest(
                run_id=run_id,
                path=path,
                upload_id=created.upload_id,
                parts=[
                    artifacts_pb2.CompletedPart(part_number=p.part_number, etag=etag)
                    for p, etag in zip(created.parts, etags, strict=True)
                ],
                sha256=sha256,
            ),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            call(
                "AbortPresignedUpload",
                artifacts_pb2.AbortPresignedUploadRequest(
                    run_id=run_id, path=path, upload_id=created.upload_id
                ),
            )
        raise
    return FileInfo.from_proto(completed.file)


def _sha256_of(local_path: str, size: int, stop: threading.Event) -> str:
    """The file's SHA-256; stops early (the upload failed) when ``stop`` is set."""
    digest = hashlib.sha256()
    read = 0
    with open(local_path, "rb", buffering=0) as file:
        while not stop.is_set() and (block := file.read(_HASH_BLOCK)):
            digest.update(block)
            read += len(block)
    if read != size and not stop.is_set():
        raise InvalidArgument(f"{local_path} changed size during the upload", field="local_path")
    return digest.hexdigest()


def _put_part(local_path: str, part: artifacts_pb2.PresignedPart, progress: Progress) -> str:
    for number in range(1, ATTEMPTS + 1):
        try:
            response = _http().request(
                "PUT",
                part.url,
                body=_file_range(local_path, part.offset, part.length, progress),
                headers={"Content-Length": str(part.length)},
            )
        except TracklaneError:
            raise
        except Exception as exc:  # urllib3 network errors: the part is sent again
            if number == ATTEMPTS:
                raise Unavailable(f"cannot reach the object store: {type(exc).__name__}") from exc
            time.sleep(min(0.2 * 2**number, 3.0))
            continue
        if response.status == 200:
            return str(response.headers.get("ETag", "")).strip('"')
        if response.status < 500 or number == ATTEMPTS:
            raise _http_error(response.status, response.data)
        time.sleep(min(0.2 * 2**number, 3.0))
    raise AssertionError("unreachable")


def _file_range(local_path: str, offset: int, length: int, progress: Progress) -> Iterable[bytes]:
    with open(local_path, "rb", buffering=0) as file:
        file.seek(offset)
        remaining = length
        while remaining > 0:
            block = file.read(min(_HTTP_BLOCK, remaining))
            if not block:
                raise InvalidArgument(f"{local_path} shrank during the upload", field="local_path")
            remaining -= len(block)
            progress.update(len(block))
            yield block


def download_direct(
    url: str, info: FileInfo, dst: str, show_progress: bool | None, verify: bool = False
) -> FileInfo:
    """GETs a presigned URL into ``dst``, resuming with a Range request after a dropped connection."""
    state = _Download(dst, verify)
    state.check_same(info)
    progress = Progress(info.file_size or 0, os.path.basename(info.path), show_progress)
    failures = 0
    try:
        while state.received < (info.file_size or 0):
            headers = {"Range": f"bytes={state.received}-"} if state.received else {}
            try:
                response = _http().request("GET", url, headers=headers, preload_content=False)
                try:
                    if response.status not in (200, 206):
                        raise _http_error(response.status, response.read())
                    # decode_content=False: the bytes as stored, without a copy through the decoder.
                    for block in response.stream(_HTTP_BLOCK, decode_content=False):
                        state.write(block)
                        progress.update(len(block))
                finally:
                    response.release_conn()
            except TracklaneError:
                raise
            except Exception as exc:  # a dropped connection: resume from what arrived
                failures += 1
                if failures > ATTEMPTS:
                    raise Unavailable(f"cannot download from the object store: {type(exc).__name__}") from exc
                time.sleep(min(0.2 * 2**failures, 3.0))
        return state.finish()
    finally:
        state.close()
        progress.close()


def _http_error(status: int, body: bytes) -> TracklaneError:
    # S3's XML error code, never the URL (it carries a signature).
    text = body.decode("utf-8", "replace")
    code = text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else f"HTTP {status}"
    if status >= 500:
        return Unavailable(f"the object store is unavailable ({code}); retry later")
    return Internal(f"the object store refused the transfer ({code})")
