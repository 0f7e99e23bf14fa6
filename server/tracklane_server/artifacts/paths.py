"""Artifact path checks: the one place that decides what a relative artifact path may look like.

Every path a client sends goes through :func:`validate_artifact_path` before any store sees it, so
the stores can join it under their root without re-checking for traversal. The rules are the
intersection of what POSIX file systems, Windows clients (which download artifacts to disk) and S3
keys accept, so a path valid here round-trips through every store and back to any client's disk.
"""

from __future__ import annotations

import re
import unicodedata

from tracklane.exceptions import InvalidArgument

__all__ = ["MAX_PATH_BYTES", "MAX_SEGMENT_BYTES", "join_key", "validate_artifact_path"]

# S3 keys are at most 1024 bytes of UTF-8; the run's prefix comes on top, which the S3 store checks.
MAX_PATH_BYTES = 1024
# NAME_MAX of ext4, XFS, APFS and NTFS (in bytes on the first three).
MAX_SEGMENT_BYTES = 255

# `C:`, `c:foo`: a drive letter makes the path absolute (or drive-relative) on Windows clients.
_DRIVE = re.compile(r"[A-Za-z]:")


def validate_artifact_path(path: str, *, field: str = "path", allow_empty: bool = False) -> str:
    """Checks a client-supplied artifact path and returns it normalized.

    A valid path is relative, ``/``-separated and made of non-empty segments other than ``.`` and
    ``..``. One trailing ``/`` is accepted and removed, so ``"plots/"`` names the folder
    ``"plots"``; anything else is refused rather than rewritten, because silently changing a path
    (collapsing ``a//b``, resolving ``a/../b``) makes two different requests hit the same file.
    Unicode is kept as sent (no NFC/NFD normalization): S3 keys are byte strings, and rewriting
    them would make files written by other tools unreachable.

    Args:
        path: The path as the client sent it.
        field: The request field to name in the error (e.g. ``"header.path"``).
        allow_empty: Accept ``""`` (the artifact root itself), e.g. for listing.

    Returns:
        The path without its trailing ``/``; ``""`` only when ``allow_empty``.

    Raises:
        InvalidArgument: With ``field`` set and a message saying what is wrong.
    """
    if path == "":
        if allow_empty:
            return ""
        raise _invalid(field, "must not be empty")
    if path.startswith(("/", "\\")):
        raise _invalid(field, f"{_show(path)} is absolute; use a path relative to the artifact root")
    if path.endswith("/"):
        path = path[:-1]
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (e.g. from os.fsdecode of undecodable bytes) cannot become S3 keys.
        raise _invalid(field, f"{_show(path)} is not valid Unicode text") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise _invalid(field, f"is {len(encoded)} bytes of UTF-8; at most {MAX_PATH_BYTES} are allowed")
    for char in path:
        if unicodedata.category(char) == "Cc":
            raise _invalid(field, f"{_show(path)} contains the control character U+{ord(char):04X}")
    if "\\" in path:
        raise _invalid(field, f"{_show(path)} contains a backslash; separate folders with '/'")
    segments = path.split("/")
    if _DRIVE.match(segments[0]):
        raise _invalid(field, f"{_show(path)} starts with a drive letter; use a relative path")
    for segment in segments:
        if segment == "":
            raise _invalid(field, f"{_show(path)} has an empty segment ('//' or a trailing '//')")
        if segment in (".", ".."):
            raise _invalid(
                field, f"{_show(path)} contains a {segment!r} segment; '.' and '..' are not allowed"
            )
        size = len(segment.encode("utf-8"))
        if size > MAX_SEGMENT_BYTES:
            raise _invalid(
                field,
                f"has a {size}-byte segment; each segment is at most {MAX_SEGMENT_BYTES} bytes of UTF-8",
            )
    return path


def join_key(prefix: str, relative: str) -> str:
    """Joins a store prefix and a validated relative path with exactly one ``/``.

    Args:
        prefix: A key prefix or folder, with or without a trailing ``/``; may be empty.
        relative: A path returned by :func:`validate_artifact_path`; may be empty.

    Returns:
        ``prefix/relative``, or whichever of the two is not empty (without a trailing ``/``).
    """
    prefix = prefix.rstrip("/")
    if not prefix:
        return relative
    if not relative:
        return prefix
    return f"{prefix}/{relative}"


def _invalid(field: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"artifact path {problem}", field=field)


def _show(path: str) -> str:
    # Quoted and shortened: the path may be 1 KiB of junk, and messages must stay one line.
    shown = path if len(path) <= 80 else path[:77] + "..."
    return ascii(shown) if not shown.isprintable() else repr(shown)
