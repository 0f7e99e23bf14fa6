"""The local store's writer: a hidden temporary file, fsynced and renamed into place on commit."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from typing import IO, NoReturn

from tracklane.exceptions import InvalidArgument, ResourceExhausted, TracklaneError

from .base import ArtifactStat
from .streaming import BaseWriter

__all__ = ["SHA256_XATTR", "TEMP_PREFIX", "LocalWriter", "escapes", "is_within"]

log = logging.getLogger(__name__)

# Uploads in progress are named `.tracklane-upload-<random>` in the destination folder (same file
# system, so the final rename is atomic); listings skip the name and paths may not use it.
TEMP_PREFIX = ".tracklane-upload-"
SHA256_XATTR = "user.tracklane.sha256"
# Like a file created under the usual umask 022; mkstemp's 0600 would hide artifacts from other users.
_FILE_MODE = 0o644


class LocalWriter(BaseWriter):
    """Writes to ``.tracklane-upload-*`` next to the destination; commit fsyncs and renames it."""

    def __init__(self, rel: str, dest: str, root: str, size: int | None, sha256: str) -> None:
        super().__init__(rel, size, sha256)
        self._dest = dest
        self._root = root
        self._created: list[str] = []
        self._file: IO[bytes] | None = None
        self._temp = ""
        try:
            self._open_temp()
        except OSError as exc:
            self.abort()
            _reraise(exc, rel)
        except BaseException:
            self.abort()
            raise

    def _open_temp(self) -> None:
        folder = os.path.dirname(self._dest)
        os.makedirs(self._root, exist_ok=True)
        missing: list[str] = []
        parent = folder
        while parent != self._root and not os.path.isdir(parent):
            missing.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
                self._created.append(directory)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise InvalidArgument(
                        f"cannot write {self.path!r}: {os.path.relpath(directory, self._root)!r} is a file",
                        field="path",
                    ) from None
        fd, self._temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        self._file = os.fdopen(fd, "wb")

    def _write(self, data: bytes | memoryview) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except OSError as exc:
            _reraise(exc, self.path)

    def _commit(self, sha256: str) -> ArtifactStat:
        assert self._file is not None
        file, self._file = self._file, None
        try:
            with file:
                file.flush()
                fd = file.fileno()
                os.fchmod(fd, _FILE_MODE)
                info = os.fstat(fd)
                _set_sha256(fd, sha256, info)
                os.fsync(fd)
            folder = os.path.dirname(self._dest)
            # Resolve again just before the rename: a link planted in the meantime must not win.
            if os.path.realpath(folder) != folder:
                raise escapes(self.path, "path")
            os.replace(self._temp, self._dest)
            _fsync_folder(folder)
        except OSError as exc:
            _reraise(exc, self.path)
        return ArtifactStat(self.path, False, info.st_size, sha256, info.st_mtime_ns // 1_000_000)

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)
        for directory in reversed(self._created):
            try:
                os.rmdir(directory)
            except OSError:
                break  # not empty any more: someone else wrote there meanwhile


def _set_sha256(fd: int, sha256: str, info: os.stat_result) -> None:
    # Size and mtime go along so a file changed later by another tool reads as "unknown", not wrong.
    if not hasattr(os, "setxattr"):
        return  # macOS/Windows Python has no xattr API: SHA-256 stays unknown there
    try:
        os.setxattr(fd, SHA256_XATTR, f"{sha256} {info.st_size} {info.st_mtime_ns}".encode("ascii"))
    except OSError as exc:
        log.debug("cannot store the SHA-256 in an extended attribute: %s", exc.strerror)


def _fsync_folder(folder: str) -> None:
    # Makes the rename itself durable; without it a crash can lose a file the client saw committed.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_within(path: str, root: str) -> bool:
    """Whether the resolved ``path`` is ``root`` or below it (both absolute and resolved)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def escapes(rel: str, field: str) -> InvalidArgument:
    """The error for a path that a symbolic link leads out of the root."""
    return InvalidArgument(
        f"artifact path {rel!r} leads outside the artifact root through a symbolic link", field=field
    )


def _os_error(exc: OSError, rel: str) -> OSError | TracklaneError:
    """The Tracklane error for a failed write, or ``exc`` itself (a server fault) when none fits."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"no space left to store {rel!r}")
    if isinstance(exc, IsADirectoryError):
        return InvalidArgument(f"artifact path {rel!r} is a folder; choose a file name", field="path")
    if isinstance(exc, NotADirectoryError):
        return InvalidArgument(f"cannot write {rel!r}: one of its parent folders is a file", field="path")
    return exc


def _reraise(exc: OSError, rel: str) -> NoReturn:
    translated = _os_error(exc, rel)
    if translated is exc:
        raise exc
    raise translated from exc
