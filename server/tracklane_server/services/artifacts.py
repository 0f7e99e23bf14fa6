"""ArtifactService: chunked upload/download, list, delete and presigned URLs over a run's artifact root.

Register it with :func:`.artifact_handlers.add_artifact_service`: the two streaming RPCs take and
give serialized bytes.

Bytes stream through: an upload's chunks go to the store's writer as they arrive (a temporary file,
or S3 multipart parts) with the next chunk received while the previous one is written; a download
reads the next chunk while the previous one is sent. Nothing holds a whole file. A failed or
cancelled upload is aborted (the temporary file or the multipart upload is removed), so nothing
half-written ever becomes visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from tracklane.exceptions import InvalidArgument, NotFound, ResourceExhausted
from tracklane.v1 import artifacts_pb2
from tracklane.wire.artifacts import chunk_message, parse_upload_message
from tracklane.wire.limits import MAX_CHUNK_BYTES
from tracklane_server.artifacts import (
    DEFAULT_PRESIGN_EXPIRY,
    ArtifactStat,
    ArtifactWriter,
    CompletedPart,
    validate_artifact_path,
)
from tracklane_server.artifacts.run_roots import RunRoots
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.services.request_checks import check_request, checked_requests
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.validation import page_size as check_page_size

__all__ = ["DOWNLOAD_CHUNK_BYTES", "MAX_CHUNK_BYTES", "ArtifactService"]

Context = Any  # grpc.aio.ServicerContext; the interceptor turns TracklaneError into its status
T = TypeVar("T")

# Download chunks: big enough to keep per-message costs low, small enough for gRPC clients' default
# 4 MiB receive limit (a 4 MiB chunk plus the message framing would exceed it).
DOWNLOAD_CHUNK_BYTES = 2 * 1024 * 1024
# gRPC's asyncio server ends the request iterator the same way whether the client finished its
# upload or cancelled it; the cancellation lands a moment later, as CancelledError in the handler.
# An upload without a declared size has nothing else to tell the two apart, so before committing
# one it waits this long for a cancellation (a declared size already catches a cut-off stream).
UNSIZED_COMMIT_GRACE_SECONDS = 0.25
LIST_PAGE_DEFAULT = 1000
LIST_PAGE_MAX = 10_000


@checked_requests
class ArtifactService:
    """A run's files, under the run's artifact root. One method per RPC of ``artifacts.proto``.

    Args:
        roots: Finds a run's artifact root and opens its store.
        blocking: Runs the (synchronous) stores on the server's thread pool.
        max_artifact_bytes: Largest file accepted; 0 for no limit.
    """

    def __init__(self, roots: RunRoots, blocking: BlockingCalls, *, max_artifact_bytes: int = 0) -> None:
        self.roots = roots
        self.blocking = blocking
        self.max_artifact_bytes = max_artifact_bytes

    def _check_declared_size(self, size: int | None) -> None:
        """INVALID_ARGUMENT (field ``size``) when a declared size is over the limit: refused up front."""
        if self.max_artifact_bytes and size is not None and size > self.max_artifact_bytes:
            raise InvalidArgument(
                f"size {size} is over this server's limit of {self.max_artifact_bytes} bytes per artifact "
                "(max_artifact_bytes)",
                field="size",
            )

    async def UploadArtifact(
        self, request_iterator: AsyncIterator[bytes], context: Context
    ) -> artifacts_pb2.UploadArtifactResponse:
        """Requests arrive serialized (see artifact_handlers): chunks are read without copies."""
        first = await anext(aiter(request_iterator), None)
        header = None if first is None else parse_upload_message(first)[0]
        if header is None:
            raise InvalidArgument("the first message must carry the upload header", field="header")
        check_request(header)
        size = header.size if header.HasField("size") else None
        self._check_declared_size(size)
        run = await self.blocking.call(self.roots.for_write, header.run_id)
        writer = await self.blocking.call(run.store.open_writer, header.path, size=size, sha256=header.sha256)
        stat = await self._receive(writer, request_iterator, sized=size is not None)
        return artifacts_pb2.UploadArtifactResponse(file=_file_info(stat))

    async def _receive(
        self, writer: ArtifactWriter, messages: AsyncIterator[bytes], *, sized: bool
    ) -> ArtifactStat:
        """Writes every chunk, one in the thread pool while the next arrives; commits or aborts."""
        pending: asyncio.Future[None] | None = None
        received = 0
        try:
            async for message in messages:
                header, chunk = parse_upload_message(message)
                if header is not None:
                    raise InvalidArgument("only the first message may carry a header", field="header")
                if len(chunk) > MAX_CHUNK_BYTES:
                    raise InvalidArgument(
                        f"chunks are at most {MAX_CHUNK_BYTES} bytes, got {len(chunk)}", field="chunk"
                    )
                if pending is not None:
                    await pending
                received += len(chunk)
                if self.max_artifact_bytes and received > self.max_artifact_bytes:
                    # No size declared (or a wrong one): the stream itself crossed the limit.
                    raise ResourceExhausted(
                        f"the upload is over this server's limit of {self.max_artifact_bytes} bytes per "
                        "artifact (max_artifact_bytes)",
                        field="chunk",
                    )
                pending = asyncio.ensure_future(self.blocking.call(writer.write, chunk))
            if pending is not None:
                await pending
                pending = None
            if not sized:
                await asyncio.sleep(UNSIZED_COMMIT_GRACE_SECONDS)  # a cancellation raises here
            return await self.blocking.call(writer.commit)
        except BaseException:
            # Also on cancellation (the client went away): the write in flight finishes first, so
            # no part can land after the abort.
            await asyncio.shield(self._abort(writer, pending))
            raise

    async def _abort(self, writer: ArtifactWriter, pending: asyncio.Future[None] | None) -> None:
        if pending is not None:
            with contextlib.suppress(BaseException):
                await pending
        await self.blocking.call(writer.abort)

    async def DownloadArtifact(
        self, request: artifacts_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[bytes]:
        """Yields serialized responses (see artifact_handlers): each chunk is copied once."""
        run = await self.blocking.call(self.roots.for_read, request.run_id)
        stat = await self.blocking.call(_file_stat, run.store, request.path)
        if request.length < 0:
            raise InvalidArgument(f"length must be >= 0, not {request.length}", field="length")
        chunks = await self.blocking.call(
            run.store.read, stat.path, request.offset, request.length or None, DOWNLOAD_CHUNK_BYTES
        )
        info = _file_info(stat).SerializeToString()
        # Read and frame the next message in the thread pool while the event loop sends this one.
        messages = _framed(chunks, info)
        upcoming: Awaitable[bytes | None] = asyncio.ensure_future(self.blocking.call(next, messages, None))
        try:
            while (message := await upcoming) is not None:
                upcoming = asyncio.ensure_future(self.blocking.call(next, messages, None))
                yield message
        finally:
            with contextlib.suppress(BaseException):
                await upcoming
            await asyncio.shield(self.blocking.call(_close, chunks))

    async def ListArtifacts(
        self, request: artifacts_pb2.ListArtifactsRequest, context: Context
    ) -> artifacts_pb2.ListArtifactsResponse:
        run = await self.blocking.call(self.roots.for_read, request.run_id)
        path = validate_artifact_path(request.path, allow_empty=True)
        size = check_page_size(request.page_size, default=LIST_PAGE_DEFAULT, maximum=LIST_PAGE_MAX)
        query = fingerprint("artifacts", request.run_id, path, request.recursive)
        after = ""
        if request.page_token:
            after = str(decode_page_token(request.page_token, query_fingerprint=query)["after"])

        def page() -> list[ArtifactStat]:
            entries = run.store.list(path, request.recursive, start_after=after)
            try:
                return list(itertools.islice(entries, size + 1))
            finally:
                _close(entries)

        entries = await self.blocking.call(page)
        token = ""
        if len(entries) > size:
            entries = entries[:size]
            token = encode_page_token({"after": entries[-1].sort_key}, query_fingerprint=query)
        return artifacts_pb2.ListArtifactsResponse(
            files=[_file_info(e) for e in entries], next_page_token=token, root_uri=run.root_uri
        )

    async def DeleteArtifact(
        self, request: artifacts_pb2.DeleteArtifactRequest, context: Context
    ) -> artifacts_pb2.DeleteArtifactResponse:
        run = await self.blocking.call(self.roots.for_write, request.run_id)
        await self.blocking.call(run.store.delete, request.path)
        return artifacts_pb2.DeleteArtifactResponse()

    async def CreatePresignedUpload(
        self, request: artifacts_pb2.CreatePresignedUploadRequest, context: Context
    ) -> artifacts_pb2.CreatePresignedUploadResponse:
        self._check_declared_size(request.size)
        run = await self.blocking.call(self.roots.for_write, request.run_id)
        upload = await self.blocking.call(
            run.store.create_presigned_upload, request.path, request.size, sha256=request.sha256
        )
        return artifacts_pb2.CreatePresignedUploadResponse(
            upload_id=upload.upload_id,
            parts=[
                artifacts_pb2.PresignedPart(
                    part_number=p.part_number, url=p.url, offset=p.offset, length=p.length
                )
                for p in upload.parts
            ],
            expire_time=_timestamp(upload.expire_time),
        )

    async def CompletePresignedUpload(
        self, request: artifacts_pb2.CompletePresignedUploadRequest, context: Context
    ) -> artifacts_pb2.CompletePresignedUploadResponse:
        run = await self.blocking.call(self.roots.for_write, request.run_id)
        if not request.upload_id:
            raise InvalidArgument("upload_id is required", field="upload_id")
        parts = [CompletedPart(p.part_number, p.etag) for p in request.parts]
        stat = await self.blocking.call(
            run.store.complete_presigned_upload, request.path, request.upload_id, parts, sha256=request.sha256
        )
        return artifacts_pb2.CompletePresignedUploadResponse(file=_file_info(stat))

    async def AbortPresignedUpload(
        self, request: artifacts_pb2.AbortPresignedUploadRequest, context: Context
    ) -> artifacts_pb2.AbortPresignedUploadResponse:
        # Allowed on a run deleted meanwhile: freeing the parts is always right.
        run = await self.blocking.call(self.roots.for_read, request.run_id)
        if not request.upload_id:
            raise InvalidArgument("upload_id is required", field="upload_id")
        await self.blocking.call(run.store.abort_presigned_upload, request.path, request.upload_id)
        return artifacts_pb2.AbortPresignedUploadResponse()

    async def GetPresignedDownload(
        self, request: artifacts_pb2.GetPresignedDownloadRequest, context: Context
    ) -> artifacts_pb2.GetPresignedDownloadResponse:
        run = await self.blocking.call(self.roots.for_read, request.run_id)
        if not run.store.supports_presign:  # before stat: the answer must not depend on the path
            await self.blocking.call(run.store.presign_get, request.path)
        stat = await self.blocking.call(_file_stat, run.store, request.path)
        expire_time = datetime.now(UTC) + DEFAULT_PRESIGN_EXPIRY
        url = await self.blocking.call(run.store.presign_get, stat.path, DEFAULT_PRESIGN_EXPIRY)
        return artifacts_pb2.GetPresignedDownloadResponse(
            url=url, file=_file_info(stat), expire_time=_timestamp(expire_time)
        )


def _framed(chunks: Iterator[bytes], info: bytes) -> Iterator[bytes]:
    """Serialized DownloadArtifactResponses: the file description with the first chunk (or alone)."""
    first = True
    for chunk in chunks:
        yield chunk_message(chunk, info if first else b"")
        first = False
    if first:
        yield chunk_message(b"", info)


def _file_stat(store: Any, path: str) -> ArtifactStat:
    """The file at ``path``; NotFound for a folder or nothing (field ``path``)."""
    stat: ArtifactStat = store.stat(validate_artifact_path(path))
    if stat.is_dir:
        raise NotFound(f"artifact path {stat.path!r} is a folder; download the files in it", field="path")
    return stat


def _close(chunks: Iterator[Any]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _file_info(stat: ArtifactStat) -> artifacts_pb2.FileInfo:
    info = artifacts_pb2.FileInfo(path=stat.path, is_dir=stat.is_dir, size=stat.size, sha256=stat.sha256)
    if stat.modify_time_ms:
        info.modify_time.FromMilliseconds(stat.modify_time_ms)
    return info


def _timestamp(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp
