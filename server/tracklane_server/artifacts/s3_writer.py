"""Streaming uploads to S3: buffered multipart parts, verified before anything becomes visible.

A file smaller than one part is held (at most 8 MiB) and sent as one PUT at commit, with its
SHA-256 in the object's user metadata. A larger file becomes a multipart upload whose parts are
sent as they fill, two at a time in the background so receiving the next part overlaps sending
the previous one; memory stays under about three parts per upload. The size and SHA-256 are
checked before CompleteMultipartUpload, so a mismatch is aborted and never seen.

Where the SHA-256 is stored:

- Known when the object is created (a small file, or a declared hash): user metadata
  ``x-amz-meta-tracklane-sha256``, part of the object, returned by HEAD and MinIO's listings.
- Learnt only at the end of a multipart upload (not declared): S3 metadata is fixed at creation
  and changing it means copying the object (MinIO rewrites all the data of a multipart object on
  a copy to itself: a second upload's worth of disk I/O). So it goes into an object tag,
  ``tracklane-sha256 = <sha256>.<etag>``, set after completion in one cheap request. Tags come
  with MinIO's listings; ``stat`` needs one more request (GetObjectTagging) for such objects. The
  ETag in the value ties the hash to that exact content: if another upload replaced the object
  in the meantime, the tag no longer matches and the hash reads as unknown rather than wrong.
  Between completion and tagging, or if tagging fails, the hash reads as unknown (``""``).
"""

from __future__ import annotations

import collections
import io
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from minio import Minio
from minio.commonconfig import Tags
from minio.datatypes import Part

from .base import ArtifactStat
from .s3_client import s3_errors
from .streaming import BaseWriter

__all__ = [
    "CONTENT_TYPE",
    "PART_SIZE",
    "S3Writer",
    "sha256_headers",
    "sha256_of_metadata",
    "sha256_of_tags",
    "tag_sha256",
    "to_ms",
]

log = logging.getLogger(__name__)

# S3's minimum part is 5 MiB; 8 MiB is what the AWS CLI and boto3 use, a good speed/memory balance.
PART_SIZE = 8 * 1024 * 1024
CONTENT_TYPE = "application/octet-stream"
_SHA256_META = "x-amz-meta-tracklane-sha256"
SHA256_TAG = "tracklane-sha256"
# Parts in flight per upload: two sending while the next fills (about 3 parts of memory in all).
_MAX_PARTS_IN_FLIGHT = 2

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _part_executor() -> ThreadPoolExecutor:
    # Shared by all uploads and created on first use; uploads bound their own share with
    # _MAX_PARTS_IN_FLIGHT, so one large upload cannot starve the others of memory.
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tracklane-s3-part")
        return _executor


def sha256_headers(sha256: str) -> dict[str, str | list[str] | tuple[str]]:
    """Request headers for a new object: content type and, when known, the SHA-256 metadata."""
    headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": CONTENT_TYPE}
    if sha256:
        headers[_SHA256_META] = sha256
    return headers


def sha256_of_metadata(metadata: Any) -> str:
    """The stored SHA-256 from stat headers or listing metadata (any key case), or ``""``."""
    if not metadata:
        return ""
    for key, value in metadata.items():
        if key.lower() == _SHA256_META and isinstance(value, str) and len(value) == 64:
            return value.lower()
    return ""


def sha256_of_tags(tags: Any, etag: str | None) -> str:
    """The SHA-256 from the object's tags, if it was recorded for this very content (ETag), or ``""``."""
    value = tags.get(SHA256_TAG, "") if tags else ""
    sha256, _, tagged_etag = str(value).partition(".")
    if len(sha256) != 64 or not etag or tagged_etag != etag:
        return ""
    return sha256.lower()


def tag_sha256(client: Minio, bucket: str, key: str, etag: str, sha256: str) -> bool:
    """Records a SHA-256 learnt after the object was created in its ``tracklane-sha256`` tag; best effort.

    Returns:
        Whether the tag was set; when not, the file is complete and correct, only its hash unknown.
    """
    tags = Tags.new_object_tags()
    tags[SHA256_TAG] = f"{sha256}.{etag}"
    try:
        client.set_object_tags(bucket, key, tags)
    except Exception as exc:
        log.warning("stored %r without its SHA-256: %s", key, type(exc).__name__)
        return False
    return True


def to_ms(moment: datetime | None) -> int:
    """Epoch milliseconds of a timezone-aware datetime, truncated to whole seconds; 0 for None.

    HEAD's Last-Modified has whole seconds while MinIO's listings have milliseconds: truncating
    both keeps ``stat`` and ``list`` of the same file equal.
    """
    return int(moment.timestamp()) * 1000 if moment is not None else 0


class PartBody:
    """A part as the buffers it arrived in; urllib3 sends them one after the other.

    Joining them into one bytes object would copy every byte once more. minio hands the body to
    urllib3 untouched (our client sends parts with an unsigned payload, see s3_client._Minio), and
    urllib3 sends any iterable with the Content-Length given by ``len()``; iterating again (a retry)
    sends the same bytes again.
    """

    def __init__(self, pieces: list[bytes | memoryview]) -> None:
        self._pieces = pieces
        self._size = sum(len(piece) for piece in pieces)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return iter(self._pieces)


class S3Writer(BaseWriter):
    """A streaming upload to one S3 key; see the module docstring."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        key: str,
        path: str,
        endpoint: str,
        size: int | None,
        sha256: str,
        part_size: int = PART_SIZE,
    ) -> None:
        super().__init__(path, size, sha256)
        self._client = client
        self._bucket = bucket
        self._key = key
        self._endpoint = endpoint
        self._part_size = part_size
        # Received bytes not yet sent, as the gRPC messages' own buffers (no copy until a part is cut).
        self._pending: list[bytes | memoryview] = []
        self._pending_bytes = 0
        self._upload_id = ""
        self._parts: list[Part] = []
        self._in_flight: collections.deque[Future[Part]] = collections.deque()
        self._completed = False

    def _errors(self) -> AbstractContextManager[None]:
        return s3_errors(self._endpoint, self._bucket, self.path)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self._part_size - self._pending_bytes)
            self._pending.append(data if take == len(data) else view[:take])
            self._pending_bytes += take
            view = view[take:]
            if self._pending_bytes == self._part_size:
                self._send_part(self._take_pending())

    def _take_pending(self) -> PartBody:
        """The pending bytes as a part body, sent as they are (no copy)."""
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        return PartBody(pending)

    def _send_part(self, data: PartBody) -> None:
        if not self._upload_id:
            with self._errors():
                # Documented-internal minio API: the public put_object needs the whole stream at
                # once, while an upload arrives over many gRPC messages.
                self._upload_id = self._client._create_multipart_upload(
                    self._bucket, self._key, sha256_headers(self._declared_sha256)
                )
        # Wait first, then submit: never more than _MAX_PARTS_IN_FLIGHT parts held at once.
        while len(self._in_flight) >= _MAX_PARTS_IN_FLIGHT:
            self._parts.append(self._in_flight.popleft().result())
        number = len(self._parts) + len(self._in_flight) + 1
        self._in_flight.append(_part_executor().submit(self._upload_part, data, number))

    def _upload_part(self, data: PartBody, number: int) -> Part:
        with self._errors():
            # A PartBody where minio says bytes: it only takes len() and passes it on to urllib3.
            etag = self._client._upload_part(
                self._bucket,
                self._key,
                data,  # type: ignore[arg-type]
                None,
                self._upload_id,
                number,
            )
        return Part(number, etag, size=len(data))

    def _commit(self, sha256: str) -> ArtifactStat:
        if not self._upload_id:
            body = b"".join(self._take_pending())
            with self._errors():
                result = self._client.put_object(
                    self._bucket,
                    self._key,
                    io.BytesIO(body),
                    len(body),
                    content_type=CONTENT_TYPE,
                    metadata=sha256_headers(sha256),
                )
            self._completed = True
            return self._final_stat(sha256, str(result.etag or ""))
        if self._pending_bytes:
            self._send_part(self._take_pending())
        while self._in_flight:
            self._parts.append(self._in_flight.popleft().result())
        with self._errors():
            completed = self._client._complete_multipart_upload(
                self._bucket, self._key, self._upload_id, self._parts
            )
        self._completed = True
        etag = str(completed.etag or "")
        if not self._declared_sha256:
            tag_sha256(self._client, self._bucket, self._key, etag, sha256)
        return self._final_stat(sha256, etag)

    def _final_stat(self, sha256: str, etag: str) -> ArtifactStat:
        # The object is committed: a failing HEAD must not turn success into an error.
        modify_time_ms = int(time.time()) * 1000
        try:
            info = self._client.stat_object(self._bucket, self._key)
            if str(info.etag or "") == etag:
                modify_time_ms = to_ms(info.last_modified)
        except Exception as exc:
            log.warning("could not stat %r after writing it: %s", self.path, type(exc).__name__)
        return ArtifactStat(self.path, False, self.bytes_written, sha256, modify_time_ms)

    def _abort(self) -> None:
        self._pending, self._pending_bytes = [], 0
        for future in self._in_flight:
            future.cancel()
        # Let running part uploads finish first, or a part could land after the abort.
        wait(self._in_flight)
        self._in_flight.clear()
        if self._upload_id and not self._completed:
            with self._errors():
                self._client._abort_multipart_upload(self._bucket, self._key, self._upload_id)
