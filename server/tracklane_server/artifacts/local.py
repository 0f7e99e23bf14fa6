"""The local-folder artifact store: the embedded default, and any ``file:///`` artifact root.

Uploads go to a hidden temporary file next to the destination and are renamed into place after
fsync, so a file is either absent or complete. The SHA-256 is kept in an extended attribute
(``user.tracklane.sha256``) set on the temporary file before the rename, so it arrives atomically
with the content and never shows up as a file of its own. Every path is resolved and must stay
inside the root: symbolic links that lead out of it are refused (INVALID_ARGUMENT), and listings
skip them.
"""

from __future__ import annotations

import builtins
import os
import shutil
import stat as stat_mode
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from tracklane.exceptions import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

from .base import (
    DEFAULT_PRESIGN_EXPIRY,
    DEFAULT_READ_CHUNK_SIZE,
    ArtifactStat,
    CompletedPart,
    PresignedUpload,
)
from .local_writer import SHA256_XATTR, TEMP_PREFIX, LocalWriter, escapes, is_within
from .paths import join_key, validate_artifact_path
from .streaming import ChunkIterator, check_range, chunked

__all__ = ["NO_DIRECT_MODE", "TEMP_PREFIX", "LocalArtifactStore"]

# The ErrorInfo reason of FailedPrecondition from presign calls here: clients fall back to proxying.
NO_DIRECT_MODE = "NO_DIRECT_MODE"


class LocalArtifactStore:
    """Artifacts in a folder of the server's file system.

    Args:
        root: Absolute folder; created on first write (or by :meth:`ensure_ready`).
    """

    supports_presign = False

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = os.fspath(root)
        if not os.path.isabs(root):
            raise InvalidArgument(f"artifact root {root!r} must be an absolute path", field="artifact_uri")
        self._root = os.path.normpath(root)
        self.root_uri = Path(self._root).as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({self._root!r})"

    def ensure_ready(self) -> None:
        """Creates the root folder if missing.

        Raises:
            Unavailable: The folder cannot be created or written.
        """
        try:
            os.makedirs(self._root, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the artifact folder {self._root}: {exc.strerror}") from exc
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise Unavailable(f"the artifact folder {self._root} is not writable by the server")

    def open_writer(self, path: str, *, size: int | None = None, sha256: str = "") -> LocalWriter:
        """Starts writing a file through a hidden temporary file; see ArtifactStore.open_writer."""
        rel, real = self._resolve(path)
        if os.path.isdir(real):
            raise InvalidArgument(f"artifact path {rel!r} is a folder; choose a file name", field="path")
        return LocalWriter(rel, real, self._real_root(), size, sha256)

    def read(
        self, path: str, offset: int = 0, length: int | None = None, chunk_size: int = DEFAULT_READ_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Streams a file's bytes; see ArtifactStore.read."""
        check_range(offset, length, chunk_size)
        rel, real = self._resolve(path)
        try:
            # Checked before open: opening a FIFO someone left in the folder would block the thread.
            info = os.stat(real)
            if not stat_mode.S_ISREG(info.st_mode):
                raise NotFound(f"no file at artifact path {rel!r} (it is a folder)")
            file = open(real, "rb", buffering=0)  # noqa: SIM115 - closed by the ChunkIterator
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no file at artifact path {rel!r}") from None
        if offset > info.st_size:
            file.close()
            raise InvalidArgument(
                f"offset {offset} is past the end of the {info.st_size}-byte file", field="offset"
            )
        file.seek(offset)
        return ChunkIterator(chunked(file.read, length, chunk_size), file.close)

    def stat(self, path: str) -> ArtifactStat:
        """Describes a file or folder; see ArtifactStore.stat."""
        rel, real = self._resolve(path, allow_empty=True)
        try:
            info = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            if not rel:
                return ArtifactStat("", is_dir=True)
            raise NotFound(f"nothing at artifact path {rel!r}") from None
        result = _to_stat(rel, real, info)
        if result is None:
            raise NotFound(f"nothing at artifact path {rel!r}")
        return result

    def list(
        self, path: str = "", recursive: bool = False, *, start_after: str = ""
    ) -> Iterator[ArtifactStat]:
        """Lists a folder in ``sort_key`` order; see ArtifactStore.list.

        A recursive listing does not descend into symbolically linked folders (no cycles, no file
        listed twice); linked files inside the root are listed.
        """
        rel, real = self._resolve(path, allow_empty=True)
        if not os.path.isdir(real):
            return iter(())
        if recursive:
            return self._walk(real, rel, self._real_root(), start_after)
        return (
            entry for entry, _, _ in _entries(real, rel, self._real_root()) if entry.sort_key > start_after
        )

    def delete(self, path: str) -> int:
        """Deletes a file or folder; see ArtifactStore.delete. Emptied parent folders go too, like on S3."""
        rel, _ = self._resolve(path, allow_empty=True)
        root = self._real_root()
        if not rel:
            if not os.path.isdir(root):
                return 0
            with os.scandir(root) as entries:
                return sum(_remove(os.path.join(root, entry.name)) for entry in entries)
        # Unlink the name itself (a link, not its target), reached through its resolved folder: a
        # link `a -> /elsewhere` must not let `a/b` unlink `/elsewhere/b`.
        parent = os.path.realpath(os.path.dirname(os.path.join(root, rel)))
        if not is_within(parent, root):
            raise escapes(rel, "path")
        target = os.path.join(parent, os.path.basename(rel))
        try:
            count = _remove(target)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"nothing at artifact path {rel!r}") from None
        _prune_empty_folders(parent, root)
        return count

    def presign_get(self, path: str, expires: timedelta = DEFAULT_PRESIGN_EXPIRY) -> str:
        """Always raises: a local folder has no direct mode."""
        raise _no_direct_mode()

    def create_presigned_upload(
        self, path: str, size: int, *, sha256: str = "", expires: timedelta = DEFAULT_PRESIGN_EXPIRY
    ) -> PresignedUpload:
        """Always raises: a local folder has no direct mode."""
        raise _no_direct_mode()

    def complete_presigned_upload(
        self,
        path: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        sha256: str = "",
        verify_sha256: bool = True,
    ) -> ArtifactStat:
        """Always raises: a local folder has no direct mode."""
        raise _no_direct_mode()

    def abort_presigned_upload(self, path: str, upload_id: str) -> None:
        """Always raises: a local folder has no direct mode."""
        raise _no_direct_mode()

    def abort_stale_uploads(self, older_than: datetime) -> int:
        """Deletes ``.tracklane-upload-*`` temporary files last written before ``older_than``."""
        cutoff = older_than.timestamp()
        removed = 0
        for folder, _, files in os.walk(self._root):  # symbolic links to folders are not followed
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(folder, name)
                try:
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:  # its upload finished or aborted meanwhile
                    continue
        return removed

    def _real_root(self) -> str:
        # Resolved on every call: a run's root is created on first write, possibly after this store.
        return os.path.realpath(self._root)

    def _resolve(self, path: str, *, allow_empty: bool = False) -> tuple[str, str]:
        """Validates ``path``; returns it with its fully resolved location, which must be in the root."""
        rel = validate_artifact_path(path, allow_empty=allow_empty)
        if os.path.basename(rel).startswith(TEMP_PREFIX):
            raise InvalidArgument(f"artifact names starting with {TEMP_PREFIX!r} are reserved", field="path")
        root = self._real_root()
        real = os.path.realpath(os.path.join(root, rel)) if rel else root
        if not is_within(real, root):
            raise escapes(rel, "path")
        return rel, real

    def _walk(self, folder: str, rel: str, root: str, start_after: str) -> Iterator[ArtifactStat]:
        for entry, real, linked in _entries(folder, rel, root):
            if not entry.is_dir:
                if entry.sort_key > start_after:
                    yield entry
            elif not linked and (start_after < entry.sort_key or start_after.startswith(entry.sort_key)):
                # Below a folder every key starts with `folder/`: skip the subtree when the cursor
                # is past all of them, so resuming a deep listing does not re-walk what came before.
                yield from self._walk(real, entry.path, root, start_after)


def _entries(folder: str, rel: str, root: str) -> builtins.list[tuple[ArtifactStat, str, bool]]:
    """A folder's visible entries in ``sort_key`` order, as (stat, resolved path, is a link)."""
    result: builtins.list[tuple[ArtifactStat, str, bool]] = []
    try:
        scanner = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return result
    with scanner:
        for entry in scanner:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            try:
                child = validate_artifact_path(join_key(rel, entry.name))
            except InvalidArgument:
                continue  # a name no client could address (written by another tool)
            try:
                linked = entry.is_symlink()
                real = os.path.realpath(entry.path) if linked else entry.path
                if linked and not is_within(real, root):
                    continue
                info = os.stat(real) if linked else entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while listing, or a dangling link
            stat = _to_stat(child, real, info)
            if stat is not None:
                result.append((stat, real, linked))
    result.sort(key=lambda item: item[0].sort_key)
    return result


def _to_stat(rel: str, real: str, info: os.stat_result) -> ArtifactStat | None:
    mtime_ms = info.st_mtime_ns // 1_000_000
    if stat_mode.S_ISDIR(info.st_mode):
        return ArtifactStat(rel, is_dir=True, modify_time_ms=mtime_ms)
    if stat_mode.S_ISREG(info.st_mode):
        return ArtifactStat(rel, False, info.st_size, _get_sha256(real, info), mtime_ms)
    return None  # sockets, FIFOs, devices: not artifacts


def _get_sha256(path: str, info: os.stat_result) -> str:
    if not hasattr(os, "getxattr"):
        return ""
    try:
        sha256, size, mtime_ns = os.getxattr(path, SHA256_XATTR).decode("ascii").split(" ")
    except (OSError, ValueError):
        return ""
    if size != str(info.st_size) or mtime_ns != str(info.st_mtime_ns):
        return ""
    return sha256


def _remove(path: str) -> int:
    """Removes a file, link or folder tree (never following links); returns the files removed."""
    info = os.lstat(path)
    if not stat_mode.S_ISDIR(info.st_mode):
        os.unlink(path)
        return 0 if os.path.basename(path).startswith(TEMP_PREFIX) else 1
    count = _count_files(path)
    shutil.rmtree(path)
    return count


def _count_files(folder: str) -> int:
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                count += _count_files(entry.path)
            elif not entry.name.startswith(TEMP_PREFIX):
                count += 1
    return count


def _prune_empty_folders(folder: str, root: str) -> None:
    while folder != root and is_within(folder, root):
        try:
            os.rmdir(folder)
        except OSError:
            return  # not empty (or already gone): stop
        folder = os.path.dirname(folder)


def _no_direct_mode() -> FailedPrecondition:
    return FailedPrecondition(
        "this artifact root is a local folder: it has no direct (presigned) mode; upload through the server",
        reason=NO_DIRECT_MODE,
    )
