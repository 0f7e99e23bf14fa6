"""Building blocks shared by the stores: the writer state machine and closing chunk iterators."""

from __future__ import annotations

import abc
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from tracklane.exceptions import FailedPrecondition, InvalidArgument

from .base import ArtifactStat

__all__ = ["BaseWriter", "ChunkIterator", "check_declared", "check_range", "chunked"]

log = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_declared(
    size: int | None, sha256: str, *, size_field: str = "size", sha256_field: str = "sha256"
) -> str:
    """Checks a declared size and SHA-256; returns the SHA-256 lowercased.

    Raises:
        InvalidArgument: A negative size or a SHA-256 that is not 64 hex digits.
    """
    if size is not None and size < 0:
        raise InvalidArgument(f"size must be >= 0, not {size}", field=size_field)
    lowered = sha256.lower()
    if lowered and not _SHA256_HEX.fullmatch(lowered):
        raise InvalidArgument("sha256 must be 64 hexadecimal digits (or empty)", field=sha256_field)
    return lowered


class BaseWriter(abc.ABC):
    """Shared writer logic: running size and SHA-256, declared-value checks, commit/abort states.

    Subclasses implement :meth:`_write`, :meth:`_commit` and :meth:`_abort`. Any failure in
    :meth:`write` or :meth:`commit` aborts first and then raises, so callers only handle errors.
    """

    def __init__(self, path: str, size: int | None, sha256: str) -> None:
        self._declared_sha256 = check_declared(size, sha256)
        self._path = path
        self._declared_size = size
        self._hash = hashlib.sha256()
        self._written = 0
        self._state = "open"

    @property
    def path(self) -> str:
        """The destination, relative to the store's root."""
        return self._path

    @property
    def bytes_written(self) -> int:
        """Bytes received so far."""
        return self._written

    def write(self, data: bytes | memoryview) -> None:
        """Appends bytes.

        Raises:
            InvalidArgument: More bytes than the declared size (field ``size``); the upload is aborted.
            FailedPrecondition: The writer was already committed or aborted.
        """
        self._require_open()
        if not data:
            return
        if self._declared_size is not None and self._written + len(data) > self._declared_size:
            self.abort()
            raise InvalidArgument(
                f"received more than the declared size of {self._declared_size} bytes", field="size"
            )
        self._hash.update(data)
        self._written += len(data)
        try:
            self._write(data)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> ArtifactStat:
        """Verifies size and SHA-256 against the declared values and makes the file visible.

        Raises:
            InvalidArgument: Size (field ``size``) or SHA-256 (field ``sha256``) mismatch; nothing is stored.
            FailedPrecondition: The writer was already committed or aborted.
        """
        self._require_open()
        digest = self._hash.hexdigest()
        try:
            if self._declared_size is not None and self._written != self._declared_size:
                raise InvalidArgument(
                    f"received {self._written} bytes, but the declared size is {self._declared_size}",
                    field="size",
                )
            if self._declared_sha256 and digest != self._declared_sha256:
                raise InvalidArgument(
                    f"content SHA-256 is {digest}, but the declared sha256 is {self._declared_sha256}",
                    field="sha256",
                )
            stat = self._commit(digest)
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        return stat

    def abort(self) -> None:
        """Discards everything written; a no-op after commit or a previous abort. Never raises."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._abort()
        except Exception:
            # Abort runs on error paths; raising here would hide the error that caused it.
            log.warning("could not clean up the aborted upload of %r", self._path, exc_info=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Abort also on a normal exit without commit: an unfinished upload must never appear.
        self.abort()

    def _require_open(self) -> None:
        if self._state != "open":
            raise FailedPrecondition(f"the upload of {self._path!r} is already {self._state}")

    @abc.abstractmethod
    def _write(self, data: bytes | memoryview) -> None:
        """Stores the next bytes somewhere invisible."""

    @abc.abstractmethod
    def _commit(self, sha256: str) -> ArtifactStat:
        """Makes the bytes visible under the path; ``sha256`` is the verified content hash."""

    @abc.abstractmethod
    def _abort(self) -> None:
        """Removes everything :meth:`_write` stored."""


class ChunkIterator(Iterator[bytes]):
    """Chunks from an open file or HTTP response that closes it when exhausted, closed or collected.

    A plain generator would only close its resource once iterated; a download the caller never
    starts (e.g. a cancelled RPC) would leak a file handle or a pooled connection.
    """

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._close: Callable[[], None] | None = close

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        if self._close is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Releases the file or connection; further iteration stops."""
        close, self._close = self._close, None
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def chunked(read: Callable[[int], bytes], length: int | None, chunk_size: int) -> Iterator[bytes]:
    """Yields ``read(n)`` results until ``length`` bytes (or EOF when None) were read."""
    remaining = length
    while remaining is None or remaining > 0:
        data = read(chunk_size if remaining is None else min(chunk_size, remaining))
        if not data:
            return
        if remaining is not None:
            remaining -= len(data)
        yield data


def check_range(offset: int, length: int | None, chunk_size: int) -> None:
    """Checks read arguments.

    Raises:
        InvalidArgument: A negative offset or length, or a chunk size below 1.
    """
    if offset < 0:
        raise InvalidArgument(f"offset must be >= 0, not {offset}", field="offset")
    if length is not None and length < 0:
        raise InvalidArgument(f"length must be >= 0, not {length}", field="length")
    if chunk_size < 1:
        raise InvalidArgument(f"chunk_size must be >= 1, not {chunk_size}", field="chunk_size")
