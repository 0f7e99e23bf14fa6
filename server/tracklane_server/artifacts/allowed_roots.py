"""Where artifacts may live: the artifact roots the operator configured, and nowhere else.

A client choosing an experiment's ``artifact_location`` would otherwise choose where the server
writes: any folder of its disk (``file:///etc``), or any bucket its credentials reach
(``s3://someone-elses-bucket``, a confused deputy). So a location must be a well-formed
``file:///`` or ``s3://`` URI under the default ``--artifact-root`` or one of
``--allowed-artifact-roots``, compared segment by segment after normalization (no ``..``, no empty
segments, no percent-encoded tricks), and the stale-upload sweeper walks only these roots.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit
from urllib.request import url2pathname

from minio.helpers import check_bucket_name

from tracklane.exceptions import InvalidArgument

from .paths import validate_artifact_path

__all__ = ["AllowedRoots", "Location", "parse_location"]


@dataclass(frozen=True)
class Location:
    """A parsed artifact URI: ``file`` with an absolute path, or ``s3`` with a bucket and prefix.

    Attributes:
        scheme: ``file`` or ``s3``.
        bucket: The bucket (``s3``); ``""`` for ``file``.
        segments: The folder's path segments (``file``) or the key prefix's (``s3``).
    """

    scheme: str
    bucket: str
    segments: tuple[str, ...]

    @property
    def uri(self) -> str:
        """The normalized URI: ``file:///a/b`` or ``s3://bucket/a/b`` (no trailing ``/``)."""
        if self.scheme == "file":
            return PurePosixPath("/", *self.segments).as_uri()
        return "/".join([f"s3://{self.bucket}", *self.segments])

    @property
    def path(self) -> str:
        """The local folder of a ``file`` location."""
        return posixpath.join("/", *self.segments)

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this location or below it."""
        return (
            self.scheme == other.scheme
            and self.bucket == other.bucket
            and other.segments[: len(self.segments)] == self.segments
        )


def parse_location(uri: str, field: str) -> Location:
    """Parses and normalizes an artifact URI.

    Raises:
        InvalidArgument: Not ``file:///absolute/folder`` or ``s3://bucket[/prefix]``, or a path with
            ``.``/``..``/empty segments or control characters (field ``field``).
    """
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in uri):
        # Before parsing: urlsplit silently drops tabs and newlines, turning one URI into another.
        raise InvalidArgument(f"{field}: {_shown(uri)} contains control characters", field=field)
    parts = urlsplit(uri)
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise _invalid(uri, field)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise _invalid(uri, field)
        path = url2pathname(parts.path)  # percent-decoded: `%2e%2e` is `..`, checked below
        return Location("file", "", _segments(path[1:], uri, field))
    if parts.scheme == "s3":
        try:
            check_bucket_name(parts.netloc, strict=True)
        except ValueError:
            raise _invalid(uri, field) from None
        if "%" in parts.path:
            # S3 keys are taken literally (never percent-decoded); a `%2e%2e` would read as `..`
            # to any tool that does decode them.
            raise InvalidArgument(
                f"{field}: {_shown(uri)}: percent signs are not allowed in an s3:// location", field=field
            )
        return Location("s3", parts.netloc, _segments(parts.path[1:], uri, field))
    raise _invalid(uri, field)


def _segments(path: str, uri: str, field: str) -> tuple[str, ...]:
    try:
        normalized = validate_artifact_path(path, field=field, allow_empty=True)
    except InvalidArgument as exc:
        raise InvalidArgument(
            f"{field}: {_shown(uri)} is not a clean path ({exc.message})", field=field
        ) from None
    return tuple(normalized.split("/")) if normalized else ()


def _invalid(uri: str, field: str) -> InvalidArgument:
    return InvalidArgument(
        f"{field}: {_shown(uri)} is not an artifact location; use file:///ABSOLUTE/FOLDER or "
        "s3://BUCKET/PREFIX under an artifact root the server allows",
        field=field,
    )


def _shown(uri: str) -> str:
    # Never echo what may be credentials (s3://KEY:SECRET@bucket), nor 64 KiB of junk.
    if "@" in uri:
        return "the URI (it contains '@')"
    return repr(uri if len(uri) <= 200 else uri[:197] + "...")


class AllowedRoots:
    """The operator's artifact roots: the default one, then the extra ones allowed.

    Args:
        default_root: ``--artifact-root`` (resolved): where new experiments go by default.
        extra: ``--allowed-artifact-roots``: other roots experiments may name.

    Raises:
        InvalidArgument: A root that does not parse (field ``artifact_root`` or
            ``allowed_artifact_roots``).
    """

    def __init__(self, default_root: str, extra: Iterable[str] = ()) -> None:
        roots = [parse_location(default_root, "artifact_root")]
        roots += [parse_location(uri, "allowed_artifact_roots") for uri in extra]
        self._roots = tuple(dict.fromkeys(roots))

    @property
    def uris(self) -> tuple[str, ...]:
        """Every root, normalized, the default first."""
        return tuple(root.uri for root in self._roots)

    def check_location(self, location: str, field: str = "artifact_location") -> str:
        """The normalized location when it is under an allowed root.

        Raises:
            InvalidArgument: Malformed, or outside every allowed root (field ``field``).
        """
        parsed = parse_location(location, field)
        if not any(root.contains(parsed) for root in self._roots):
            raise InvalidArgument(
                f"{field}: {_shown(location)} is not under an artifact root this server allows; "
                "leave it empty for the default, or ask the operator to add the root to "
                "--allowed-artifact-roots",
                field=field,
            )
        return parsed.uri

    def containing(self, uri: str) -> Location | None:
        """The innermost allowed root ``uri`` is in, or None (e.g. a location from before the rule)."""
        try:
            parsed = parse_location(uri, "artifact_uri")
        except InvalidArgument:
            return None
        found = [root for root in self._roots if root.contains(parsed)]
        return max(found, key=lambda root: len(root.segments)) if found else None
