"""The artifact store interface: what the ArtifactService needs from a local folder or an S3 bucket.

Stores are synchronous; the asyncio server calls them from its thread pool. Paths handed to a
store are relative to its root and already checked by :mod:`tracklane_server.artifacts.paths`
(stores check again, cheaply, so that no caller can skip it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "DEFAULT_PRESIGN_EXPIRY",
    "DEFAULT_READ_CHUNK_SIZE",
    "ArtifactStat",
    "ArtifactStore",
    "ArtifactWriter",
    "CompletedPart",
    "PresignedPart",
    "PresignedUpload",
]

# gRPC messages carry 1-4 MiB; 1 MiB keeps a download's memory small and its messages well under limits.
DEFAULT_READ_CHUNK_SIZE = 1024 * 1024
DEFAULT_PRESIGN_EXPIRY = timedelta(hours=1)


@dataclass(frozen=True)
class ArtifactStat:
    """A file or folder in a store.

    Attributes:
        path: Relative to the store's root, ``/``-separated; ``""`` for the root itself.
        is_dir: True for a folder (then ``size`` is 0 and ``sha256`` is empty).
        size: Bytes.
        sha256: Lowercase hex SHA-256 of the content, or ``""`` when the store does not know it.
        modify_time_ms: Last write, epoch milliseconds; 0 when unknown (e.g. S3 folders).
    """

    path: str
    is_dir: bool = False
    size: int = 0
    sha256: str = ""
    modify_time_ms: int = 0

    @property
    def sort_key(self) -> str:
        """The key listings are ordered by: the path, plus ``/`` for a folder (S3's key order)."""
        return f"{self.path}/" if self.is_dir else self.path


@dataclass(frozen=True)
class PresignedPart:
    """One PUT of a direct upload.

    Attributes:
        part_number: 1-based.
        url: Presigned PUT URL; the client sends exactly ``length`` bytes and keeps the ETag header.
        offset: First byte of the file in this part.
        length: Bytes in this part.
    """

    part_number: int
    url: str
    offset: int
    length: int


@dataclass(frozen=True)
class PresignedUpload:
    """A started direct upload.

    Attributes:
        upload_id: Opaque; names the upload in complete/abort. Carries the declared size, so any
            server replica can verify the upload without shared state.
        parts: One per part, in order; a single part for files up to one part size.
        expire_time: When the URLs stop working (UTC).
    """

    upload_id: str
    parts: tuple[PresignedPart, ...]
    expire_time: datetime


@dataclass(frozen=True)
class CompletedPart:
    """A part as the object store acknowledged it: its number and the ETag header of its PUT."""

    part_number: int
    etag: str


class ArtifactWriter(Protocol):
    """An upload in progress. Nothing is visible under its path until :meth:`commit` returns.

    Use as a context manager: leaving the block without a commit (normally or by an exception)
    aborts, so a cancelled upload leaves nothing behind.
    """

    @property
    def path(self) -> str:
        """The destination, relative to the store's root."""
        ...

    @property
    def bytes_written(self) -> int:
        """Bytes received so far."""
        ...

    def write(self, data: bytes | memoryview) -> None:
        """Appends bytes. Raises InvalidArgument (field ``size``) past the declared size."""
        ...

    def commit(self) -> ArtifactStat:
        """Verifies the declared size and SHA-256, then makes the file visible, atomically."""
        ...

    def abort(self) -> None:
        """Discards everything written; a no-op after commit or a previous abort."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ArtifactStore(Protocol):
    """Files under one root: a local folder or an S3 bucket and prefix."""

    @property
    def root_uri(self) -> str:
        """``file:///...`` or ``s3://bucket/prefix``."""
        ...

    @property
    def supports_presign(self) -> bool:
        """Whether the presign methods work (direct transfers to the object store)."""
        ...

    def ensure_ready(self) -> None:
        """Creates the folder or bucket if missing; the server calls it once, at start.

        Raises:
            Unavailable: The object store cannot be reached or refused the credentials.
        """
        ...

    def open_writer(self, path: str, *, size: int | None = None, sha256: str = "") -> ArtifactWriter:
        """Starts writing a file; bytes stream through without being held in memory.

        Args:
            path: Destination, relative to the root.
            size: Declared total bytes, verified at commit (and as bytes arrive).
            sha256: Declared lowercase hex SHA-256, verified at commit.

        Raises:
            InvalidArgument: Bad path (field ``path``), size or sha256.
        """
        ...

    def read(
        self, path: str, offset: int = 0, length: int | None = None, chunk_size: int = DEFAULT_READ_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Streams a file's bytes from ``offset``, at most ``length`` of them (all when None).

        The file is opened before this returns, so NotFound is raised here, not on iteration.

        Raises:
            NotFound: No file there.
            InvalidArgument: Bad path, or ``offset`` past the end (field ``offset``).
        """
        ...

    def stat(self, path: str) -> ArtifactStat:
        """Describes a file or folder (``""`` is the root). Raises NotFound when nothing is there."""
        ...

    def list(
        self, path: str = "", recursive: bool = False, *, start_after: str = ""
    ) -> Iterator[ArtifactStat]:
        """Lists a folder in :attr:`ArtifactStat.sort_key` order.

        One level gives files and folders; recursive gives every file below (no folders). A file
        or a missing folder lists as empty.

        Args:
            path: Folder relative to the root; ``""`` for the root.
            recursive: Everything below instead of one level.
            start_after: Resume after the entry with this :attr:`ArtifactStat.sort_key` (paging).
        """
        ...

    def delete(self, path: str) -> int:
        """Deletes a file, or a folder with everything below it; ``""`` empties the root.

        Returns:
            The number of files deleted.

        Raises:
            NotFound: Nothing at ``path`` (never for ``""``).
        """
        ...

    def presign_get(self, path: str, expires: timedelta = DEFAULT_PRESIGN_EXPIRY) -> str:
        """A URL anyone can GET the file from until ``expires`` passes.

        Raises:
            FailedPrecondition: The store has no direct mode (a local folder).
        """
        ...

    def create_presigned_upload(
        self, path: str, size: int, *, sha256: str = "", expires: timedelta = DEFAULT_PRESIGN_EXPIRY
    ) -> PresignedUpload:
        """Starts a direct upload of ``size`` bytes: presigned PUT URLs, one per part.

        Raises:
            FailedPrecondition: The store has no direct mode (a local folder).
        """
        ...

    def complete_presigned_upload(
        self,
        path: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        sha256: str = "",
        verify_sha256: bool = True,
    ) -> ArtifactStat:
        """Finishes a direct upload after checking its parts and size (and SHA-256 if declared).

        Args:
            sha256: The SHA-256 the client computed while sending, recorded with the file (field
                ``sha256``); must equal the one declared at the start, if any.

        Raises:
            InvalidArgument: Parts missing or wrong (field ``parts``), size or SHA-256 mismatch.
            NotFound: No such upload (completed, aborted or expired).
            FailedPrecondition: The store has no direct mode (a local folder).
        """
        ...

    def abort_presigned_upload(self, path: str, upload_id: str) -> None:
        """Abandons a direct upload and frees its parts; a no-op if it is already gone."""
        ...

    def abort_stale_uploads(self, older_than: datetime) -> int:
        """Removes unfinished uploads under the root begun before ``older_than`` (UTC).

        What a server killed mid-upload leaves (an incomplete multipart upload, a temporary file),
        and abandoned direct uploads. Must only be given a time before the start of any upload
        still under way.

        Returns:
            How many were removed.

        Raises:
            Unavailable: The object store cannot be reached.
        """
        ...
