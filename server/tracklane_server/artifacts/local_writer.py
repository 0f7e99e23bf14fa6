"""The local store's writer: a hidden temporary file, fsynced and renamed into place on commit.

The temporary file is created in the destination folder's open descriptor, and renamed there, so
it can never land anywhere else, whatever happens to the folder's path meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
from typing import NoReturn

from tracklane.exceptions import InvalidArgument, ResourceExhausted, TracklaneError

from .base import ArtifactStat
from .local_fs import DirChain
from .streaming import BaseWriter

__all__ = ["SHA256_XATTR", "TEMP_PREFIX", "LocalWriter", "file_modes", "raise_os_error"]

log = logging.getLogger(__name__)

# Uploads in progress are named `.tracklane-upload-<random>` in the destination folder (same file
# system, so the final rename is atomic); listings skip the name and paths may not use it.
TEMP_PREFIX = ".tracklane-upload-"
SHA256_XATTR = "user.tracklane.sha256"


def file_modes(private: bool) -> tuple[int, int]:
    """(folder mode, file mode) to create with: owner-only when ``private``, else the umask's say."""
    return (0o700, 0o600) if private else (0o777, 0o666)


class LocalWriter(BaseWriter):
    """Writes to ``.tracklane-upload-*`` in the destination's folder; commit fsyncs and renames it.

    Args:
        rel: The destination, relative to the store's root.
        folder: The open folders down to the destination's; the writer owns (and closes) them.
        name: The destination's name in its folder.
        file_mode: Mode the file is created with (the umask applies).
    """

    def __init__(
        self, rel: str, folder: DirChain, name: str, file_mode: int, size: int | None, sha256: str
    ) -> None:
        super().__init__(rel, size, sha256)
        self._folder = folder
        self._name = name
        self._fd = -1
        self._temp = ""
        folder.keep_only_deepest()
        try:
            self._open_temp(file_mode)
        except OSError as exc:
            self.abort()
            raise_os_error(exc, rel)
        except BaseException:
            self.abort()
            raise

    def _open_temp(self, mode: int) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                self._fd = os.open(temp, flags, mode, dir_fd=self._folder.fd)
            except FileExistsError:
                continue
            self._temp = temp
            return

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise_os_error(exc, self.path)

    def _commit(self, sha256: str) -> ArtifactStat:
        folder = self._folder.fd
        try:
            info = os.fstat(self._fd)
            _set_sha256(self._fd, sha256, info)
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            os.replace(self._temp, self._name, src_dir_fd=folder, dst_dir_fd=folder)
            self._temp = ""
            # Makes the rename itself durable; without it a crash can lose a file the client saw committed.
            os.fsync(folder)
        except OSError as exc:
            raise_os_error(exc, self.path)
        finally:
            if not self._temp:
                self._folder.close()
        return ArtifactStat(self.path, False, info.st_size, sha256, info.st_mtime_ns // 1_000_000)

    def _abort(self) -> None:
        try:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._temp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp, dir_fd=self._folder.fd)
                self._temp = ""
            self._folder.remove_created()
        finally:
            self._folder.close()


def _set_sha256(fd: int, sha256: str, info: os.stat_result) -> None:
    # Size and mtime go along so a file changed later by another tool reads as "unknown", not wrong.
    if not hasattr(os, "setxattr"):
        return  # macOS/Windows Python has no xattr API: SHA-256 stays unknown there
    try:
        os.setxattr(fd, SHA256_XATTR, f"{sha256} {info.st_size} {info.st_mtime_ns}".encode("ascii"))
    except OSError as exc:
        log.debug("cannot store the SHA-256 in an extended attribute: %s", exc.strerror)


def _os_error(exc: OSError, rel: str) -> OSError | TracklaneError:
    """The Tracklane error for a failed write, or ``exc`` itself (a server fault) when none fits."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"no space left to store {rel!r}")
    if isinstance(exc, IsADirectoryError):
        return InvalidArgument(f"artifact path {rel!r} is a folder; choose a file name", field="path")
    if isinstance(exc, NotADirectoryError):
        return InvalidArgument(f"cannot write {rel!r}: one of its parent folders is a file", field="path")
    return exc


def raise_os_error(exc: OSError, rel: str) -> NoReturn:
    """Raises the Tracklane error for a failed write (no space, a folder in the way), else ``exc``."""
    translated = _os_error(exc, rel)
    if translated is exc:
        raise exc
    raise translated from exc
