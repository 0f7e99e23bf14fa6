"""The local-folder artifact store: the embedded default, and any ``file:///`` artifact root.

Uploads go to a hidden temporary file next to the destination and are renamed into place after
fsync, so a file is either absent or complete. The SHA-256 is kept in an extended attribute
(``user.tracklane.sha256``) set on the temporary file before the rename, so it arrives atomically
with the content and never shows up as a file of its own.

Paths are resolved race-free (see :mod:`.local_fs`): from a trusted base folder (the artifact root
the operator configured), every folder and file is opened relative to the open folder above it,
never through a symbolic link. A link below the base is not an artifact: listings skip it, and a
path through it is refused (INVALID_ARGUMENT), so swapping a folder for a link mid-call cannot
lead a read, write, listing or delete outside.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import stat as stat_mode
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
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
from .local_fs import (
    DirChain,
    LinkInPath,
    NotAFolder,
    entries,
    lstat_at,
    open_base,
    open_chain,
    open_child,
    open_regular,
    remove_tree,
)
from .local_writer import SHA256_XATTR, TEMP_PREFIX, LocalWriter, file_modes, raise_os_error
from .paths import join_key, validate_artifact_path
from .streaming import ChunkIterator, check_range, chunked

__all__ = ["NO_DIRECT_MODE", "TEMP_PREFIX", "LocalArtifactStore"]

# The ErrorInfo reason of FailedPrecondition from presign calls here: clients fall back to proxying.
NO_DIRECT_MODE = "NO_DIRECT_MODE"


class LocalArtifactStore:
    """Artifacts in a folder of the server's file system.

    Args:
        root: Absolute folder; created on first write (or by :meth:`ensure_ready`).
        base: The trusted folder ``root`` is in (or is): the artifact root the operator configured.
            Links in its own path are followed; from it down to ``root`` and below, none is.
            Default: ``root`` itself.
        private: Create files 0600 and folders 0700 (with auth on, other local accounts must not
            read artifacts); otherwise 0666 and 0777 less the umask, as any program would.
    """

    supports_presign = False

    def __init__(self, root: str | os.PathLike[str], *, base: str = "", private: bool = False) -> None:
        root = os.fspath(root)
        if not os.path.isabs(root):
            raise InvalidArgument(f"artifact root {root!r} must be an absolute path", field="artifact_uri")
        self._root = os.path.normpath(root)
        self._base = os.path.normpath(base) if base else self._root
        below = os.path.relpath(self._root, self._base)
        if below == os.curdir:
            self._below: tuple[str, ...] = ()
        elif below == os.pardir or below.startswith(os.pardir + os.sep):
            raise InvalidArgument(f"artifact root {root!r} is not inside {base!r}", field="artifact_uri")
        else:
            self._below = tuple(below.split(os.sep))
        self._dir_mode, self._file_mode = file_modes(private)
        self.root_uri = Path(self._root).as_uri()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({self._root!r})"

    def ensure_ready(self) -> None:
        """Creates the root folder if missing.

        Raises:
            Unavailable: The folder cannot be created or written.
        """
        try:
            with _opened(self._walk("", (), create=True)):
                pass
        except OSError as exc:
            raise Unavailable(f"cannot create the artifact folder {self._root}: {exc.strerror}") from exc
        if not os.access(self._root, os.W_OK | os.X_OK):
            raise Unavailable(f"the artifact folder {self._root} is not writable by the server")

    def open_writer(self, path: str, *, size: int | None = None, sha256: str = "") -> LocalWriter:
        """Starts writing a file through a hidden temporary file; see ArtifactStore.open_writer."""
        rel = self._check(path)
        *parents, name = rel.split("/")
        try:
            folder = self._walk(rel, parents, create=True)
        except OSError as exc:
            raise_os_error(exc, rel)
        assert folder is not None  # created when missing
        try:
            existing = lstat_at(folder.fd, name)
        except OSError as exc:
            folder.remove_created()
            folder.close()
            raise_os_error(exc, rel)
        if existing is not None and not stat_mode.S_ISREG(existing.st_mode):
            folder.close()
            if stat_mode.S_ISLNK(existing.st_mode):
                raise _through_link(rel, rel)
            what = "a folder; choose a file name" if stat_mode.S_ISDIR(existing.st_mode) else "not a file"
            raise InvalidArgument(f"artifact path {rel!r} is {what}", field="path")
        return LocalWriter(rel, folder, name, self._file_mode, size, sha256)

    def read(
        self, path: str, offset: int = 0, length: int | None = None, chunk_size: int = DEFAULT_READ_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Streams a file's bytes; see ArtifactStore.read."""
        check_range(offset, length, chunk_size)
        rel = self._check(path)
        *parents, name = rel.split("/")
        with self._walk_existing(rel, parents) as folder:
            if folder is None:
                raise NotFound(f"no file at artifact path {rel!r}")
            self._refuse_link(folder.fd, name, rel)
            opened = open_regular(folder.fd, name)
        if opened is None:
            raise NotFound(f"no file at artifact path {rel!r}")
        fd, info = opened
        file = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the ChunkIterator
        if offset > info.st_size:
            file.close()
            raise InvalidArgument(
                f"offset {offset} is past the end of the {info.st_size}-byte file", field="offset"
            )
        file.seek(offset)
        return ChunkIterator(chunked(file.read, length, chunk_size), file.close)

    def stat(self, path: str) -> ArtifactStat:
        """Describes a file or folder; see ArtifactStore.stat."""
        rel = self._check(path, allow_empty=True)
        if not rel:
            with self._walk_existing(rel, ()) as root:
                if root is None:
                    return ArtifactStat("", is_dir=True)
                mtime_ms = os.fstat(root.fd).st_mtime_ns // 1_000_000
                return ArtifactStat("", is_dir=True, modify_time_ms=mtime_ms)
        *parents, name = rel.split("/")
        with self._walk_existing(rel, parents) as folder:
            if folder is None:
                raise NotFound(f"nothing at artifact path {rel!r}")
            self._refuse_link(folder.fd, name, rel)
            result = _entry_stat(folder.fd, name, rel)
        if result is None:
            raise NotFound(f"nothing at artifact path {rel!r}")
        return result

    def list(
        self, path: str = "", recursive: bool = False, *, start_after: str = ""
    ) -> Iterator[ArtifactStat]:
        """Lists a folder in ``sort_key`` order; see ArtifactStore.list. Links are not listed."""
        rel = self._check(path, allow_empty=True)
        folders = rel.split("/") if rel else []
        if not recursive:
            with self._walk_existing(rel, folders) as folder:
                found = [] if folder is None else _entries(folder.fd, rel)
            return (entry for entry, _ in found if entry.sort_key > start_after)
        return self._walk_listing(rel, folders, start_after)

    def delete(self, path: str) -> int:
        """Deletes a file or folder; see ArtifactStore.delete. Emptied parent folders go too, like on S3."""
        rel = self._check(path, allow_empty=True)
        if not rel:
            with self._walk_existing(rel, ()) as root:
                if root is None:
                    return 0
                names = [entry.name for entry in entries(root.fd)]
                return sum(remove_tree(root.fd, name, skip_count=TEMP_PREFIX) for name in names)
        *parents, name = rel.split("/")
        with self._walk_existing(rel, parents) as folder:
            if folder is None:
                raise NotFound(f"nothing at artifact path {rel!r}")
            self._refuse_link(folder.fd, name, rel)
            try:
                count = remove_tree(folder.fd, name, skip_count=TEMP_PREFIX)
            except (FileNotFoundError, NotADirectoryError):
                raise NotFound(f"nothing at artifact path {rel!r}") from None
            _prune_empty_folders(folder, keep=len(self._below))
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
        with self._walk_existing("", ()) as root:
            if root is None:
                return 0
            # fwalk opens each folder relative to its parent and never follows links.
            for _, _, files, folder in os.fwalk(".", dir_fd=root.fd):
                for name in files:
                    if not name.startswith(TEMP_PREFIX):
                        continue
                    info = lstat_at(folder, name)
                    if info is not None and stat_mode.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                        try:
                            os.unlink(name, dir_fd=folder)
                        except FileNotFoundError:  # its upload finished or aborted meanwhile
                            continue
                        removed += 1
        return removed

    def _check(self, path: str, *, allow_empty: bool = False) -> str:
        rel = validate_artifact_path(path, allow_empty=allow_empty)
        if rel.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            raise InvalidArgument(f"artifact names starting with {TEMP_PREFIX!r} are reserved", field="path")
        return rel

    def _walk(self, rel: str, folders: Sequence[str], *, create: bool) -> DirChain | None:
        """Opens the root, then ``folders`` below it; None when one is missing (and not ``create``).

        Raises:
            FailedPrecondition: A folder between the base and the root is a link or a file.
            InvalidArgument: A folder of ``rel`` is a link (field ``path``).
            NotFound: A folder of ``rel`` is a file (and not ``create``).
        """
        base = open_base(self._base, create=create, mode=self._dir_mode)
        if base is None:
            return None
        try:
            chain = open_chain(base, (*self._below, *folders), create=create, mode=self._dir_mode)
        except (LinkInPath, NotAFolder) as exc:
            depth = len(self._below)
            if exc.depth < depth:
                what = "a symbolic link" if isinstance(exc, LinkInPath) else "not a folder"
                shown = os.path.join(self._base, *self._below[: exc.depth + 1])
                raise FailedPrecondition(
                    f"the artifact folder {shown} is {what}; the server never follows links below "
                    "its artifact root"
                ) from None
            if isinstance(exc, LinkInPath):
                raise _through_link(rel, "/".join(folders[: exc.depth - depth + 1])) from None
            if create:
                raise InvalidArgument(
                    f"cannot write {rel!r}: {'/'.join(folders[: exc.depth - depth + 1])!r} is a file",
                    field="path",
                ) from None
            return None
        return chain

    def _walk_existing(self, rel: str, folders: Sequence[str]) -> AbstractContextManager[DirChain | None]:
        return _opened(self._walk(rel, folders, create=False))

    def _refuse_link(self, folder: int, name: str, rel: str) -> None:
        info = lstat_at(folder, name)
        if info is not None and stat_mode.S_ISLNK(info.st_mode):
            raise _through_link(rel, rel)

    def _walk_listing(self, rel: str, folders: Sequence[str], start_after: str) -> Iterator[ArtifactStat]:
        with self._walk_existing(rel, folders) as folder:
            if folder is not None:
                yield from _walk_below(folder.fd, rel, start_after)


def _opened(chain: DirChain | None) -> AbstractContextManager[DirChain | None]:
    """``with`` over a chain that may be None (nothing there): closes it afterwards."""
    return contextlib.nullcontext() if chain is None else chain


def _walk_below(folder: int, rel: str, start_after: str) -> Iterator[ArtifactStat]:
    for entry, is_dir in _entries(folder, rel):
        if not is_dir:
            if entry.sort_key > start_after:
                yield entry
        elif start_after < entry.sort_key or start_after.startswith(entry.sort_key):
            # Below a folder every key starts with `folder/`: skip the subtree when the cursor
            # is past all of them, so resuming a deep listing does not re-walk what came before.
            child = open_child(folder, entry.path.rsplit("/", 1)[-1])
            if child is None:
                continue  # gone, or swapped for a link or a file since it was listed
            try:
                yield from _walk_below(child, entry.path, start_after)
            finally:
                os.close(child)


def _entries(folder: int, rel: str) -> builtins.list[tuple[ArtifactStat, bool]]:
    """A folder's visible entries in ``sort_key`` order, as (stat, is a folder); links are skipped."""
    result: builtins.list[tuple[ArtifactStat, bool]] = []
    for entry in entries(folder):
        if entry.name.startswith(TEMP_PREFIX) or entry.is_symlink():
            continue
        try:
            child = validate_artifact_path(join_key(rel, entry.name))
        except InvalidArgument:
            continue  # a name no client could address (written by another tool)
        stat = _entry_stat(folder, entry.name, child)
        if stat is not None:
            result.append((stat, stat.is_dir))
    result.sort(key=lambda item: item[0].sort_key)
    return result


def _entry_stat(folder: int, name: str, rel: str) -> ArtifactStat | None:
    """A file or folder in an open folder; None for links, sockets, FIFOs, devices or nothing."""
    info = lstat_at(folder, name)
    if info is None:
        return None  # vanished meanwhile
    mtime_ms = info.st_mtime_ns // 1_000_000
    if stat_mode.S_ISDIR(info.st_mode):
        return ArtifactStat(rel, is_dir=True, modify_time_ms=mtime_ms)
    if not stat_mode.S_ISREG(info.st_mode):
        return None
    opened = open_regular(folder, name)  # the SHA-256 attribute is read from the file itself
    if opened is None:
        return None
    fd, info = opened
    try:
        return ArtifactStat(rel, False, info.st_size, _get_sha256(fd, info), info.st_mtime_ns // 1_000_000)
    finally:
        os.close(fd)


def _get_sha256(fd: int, info: os.stat_result) -> str:
    if not hasattr(os, "getxattr"):
        return ""
    try:
        sha256, size, mtime_ns = os.getxattr(fd, SHA256_XATTR).decode("ascii").split(" ")
    except (OSError, ValueError):
        return ""
    if size != str(info.st_size) or mtime_ns != str(info.st_mtime_ns):
        return ""
    return sha256


def _prune_empty_folders(chain: DirChain, *, keep: int) -> None:
    """Removes the chain's folders that are empty now, deepest first, down to (not) the root."""
    for i in reversed(range(keep, len(chain.names))):
        try:
            os.rmdir(chain.names[i], dir_fd=chain.fds[i])
        except OSError:
            return  # not empty (or already gone): stop


def _through_link(rel: str, link: str) -> InvalidArgument:
    return InvalidArgument(
        f"artifact path {rel!r} goes through the symbolic link {link!r}; links inside a local "
        "artifact folder are not followed",
        field="path",
    )


def _no_direct_mode() -> FailedPrecondition:
    return FailedPrecondition(
        "this artifact root is a local folder: it has no direct (presigned) mode; upload through the server",
        reason=NO_DIRECT_MODE,
    )
