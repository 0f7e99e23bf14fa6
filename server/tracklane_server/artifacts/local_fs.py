"""Race-free file operations below a local artifact root, one path component at a time.

A path is never handed to the kernel whole: each folder is opened relative to the one above it
(``openat`` with ``O_NOFOLLOW | O_DIRECTORY``), and files are opened, listed, renamed and removed
relative to their open folder. A symbolic link anywhere below the trusted base (the artifact root
the operator configured) is refused, so swapping a folder for a link while a call is under way
cannot lead it outside: what was checked is what is used, there is no check-then-use. Links in
the base path itself are the operator's and are followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat as stat_mode
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DirChain",
    "LinkInPath",
    "NotAFolder",
    "lstat_at",
    "open_base",
    "open_chain",
    "open_child",
    "open_regular",
    "remove_tree",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in at the last moment must not block the thread in open().
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class LinkInPath(Exception):
    """A component is a symbolic link: ``depth`` components below the start (0 = the first)."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


class NotAFolder(Exception):
    """A component that must be a folder is a file (or a socket, FIFO...)."""

    def __init__(self, depth: int) -> None:
        super().__init__(depth)
        self.depth = depth


@dataclass
class DirChain:
    """Open folders from a start folder down: ``fds[0]`` is the start, ``fds[-1]`` the deepest.

    ``created[i]`` says whether ``names[i]`` (opened as ``fds[i + 1]``) was made by this walk, so
    an aborted write can remove exactly what it created. Close with :meth:`close` (or ``with``).
    """

    fds: list[int]
    names: list[str] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)

    @property
    def fd(self) -> int:
        """The deepest folder."""
        return self.fds[-1]

    def keep_only_deepest(self, *, unless_created: bool = True) -> None:
        """Closes the folders not needed any more: all but the deepest, and (when
        ``unless_created``) the parents of folders this walk created, kept to remove them."""
        first_needed = len(self.fds) - 1
        if unless_created and any(self.created):
            first_needed = min(first_needed, self.created.index(True))
        for i in range(first_needed):
            if self.fds[i] >= 0:
                os.close(self.fds[i])
                self.fds[i] = -1

    def remove_created(self) -> None:
        """Removes the folders this walk created, deepest first, while they are empty."""
        for i in reversed(range(len(self.names))):
            if not self.created[i] or self.fds[i] < 0:
                continue
            try:
                os.rmdir(self.names[i], dir_fd=self.fds[i])
            except OSError:
                return  # not empty any more: someone else wrote there meanwhile
            self.created[i] = False

    def close(self) -> None:
        for i, fd in enumerate(self.fds):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                self.fds[i] = -1

    def __enter__(self) -> DirChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_base(base: str, *, create: bool, mode: int) -> int | None:
    """Opens the trusted base folder by its path; None when it is missing (and not ``create``)."""
    try:
        return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            return None
    os.makedirs(base, mode=mode, exist_ok=True)
    return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_chain(start: int, names: Sequence[str], *, create: bool, mode: int) -> DirChain | None:
    """Opens ``names`` one below the other from the folder ``start`` (which the chain then owns).

    Returns:
        The chain, or None when a folder is missing and not ``create`` (``start`` is then closed).

    Raises:
        LinkInPath: A component is a symbolic link (nothing is followed).
        NotAFolder: A component is a file.
    """
    chain = DirChain([start])
    try:
        for depth, name in enumerate(names):
            opened = _open_dir(chain.fd, name, depth, create=create, mode=mode)
            if opened is None:
                chain.close()
                return None
            fd, created = opened
            chain.fds.append(fd)
            chain.names.append(name)
            chain.created.append(created)
    except BaseException:
        chain.remove_created()
        chain.close()
        raise
    return chain


def open_child(parent: int, name: str) -> int | None:
    """Opens the folder ``name`` in ``parent``; None when it is missing, a link or a file."""
    try:
        opened = _open_dir(parent, name, 0, create=False, mode=0)
    except (LinkInPath, NotAFolder):
        return None
    return None if opened is None else opened[0]


def _open_dir(parent: int, name: str, depth: int, *, create: bool, mode: int) -> tuple[int, bool] | None:
    created = False
    while True:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent), created
        except FileNotFoundError:
            if not create:
                return None
        except NotADirectoryError:
            _raise_not_folder(parent, name, depth)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkInPath(depth) from None
            raise
        try:
            os.mkdir(name, mode, dir_fd=parent)
            created = True
        except FileExistsError:
            pass  # made meanwhile by another call: open it


def _raise_not_folder(parent: int, name: str, depth: int) -> None:
    # O_NOFOLLOW | O_DIRECTORY answers ENOTDIR for a link and for a file alike; tell them apart.
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise NotAFolder(depth) from None
    if stat_mode.S_ISLNK(info.st_mode):
        raise LinkInPath(depth) from None
    raise NotAFolder(depth) from None


def lstat_at(parent: int, name: str) -> os.stat_result | None:
    """The entry ``name`` itself (a link is not followed); None when it is missing."""
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular(parent: int, name: str) -> tuple[int, os.stat_result] | None:
    """Opens a regular file for reading, never through a link; None for anything else or nothing.

    Only entries that are regular files when looked at are opened (opening a device can have side
    effects), and the opened file is checked again, so a swap between the two is harmless.
    """
    info = lstat_at(parent, name)
    if info is None or not stat_mode.S_ISREG(info.st_mode):
        return None
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None  # swapped for a link since the look
        raise
    opened = os.fstat(fd)
    if not stat_mode.S_ISREG(opened.st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd, opened


def entries(folder: int) -> Iterator[os.DirEntry[str]]:
    """The entries of an open folder (``os.scandir`` on its descriptor, which it leaves open)."""
    with os.scandir(folder) as scanner:
        yield from scanner


def remove_tree(parent: int, name: str, *, skip_count: str) -> int:
    """Removes ``name`` in ``parent``: a file or link, or a folder with everything below it.

    Nothing is followed: a link is removed, not what it points to. Returns the files removed, not
    counting those whose name starts with ``skip_count`` (temporary files).
    """
    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    if not stat_mode.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=parent)
        return 0 if name.startswith(skip_count) else 1
    count = 0
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    try:
        for child in [entry.name for entry in entries(fd)]:
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another call
                count += remove_tree(fd, child, skip_count=skip_count)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=parent)
    return count
