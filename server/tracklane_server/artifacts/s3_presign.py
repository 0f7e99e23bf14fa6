"""Direct-upload helpers: how a file is split into presigned parts, and the upload id format."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from tracklane.exceptions import InvalidArgument

from .base import CompletedPart
from .s3_writer import PART_SIZE

__all__ = [
    "MAX_DIRECT_PART_SIZE",
    "MAX_OBJECT_SIZE",
    "check_expiry",
    "encode_upload_id",
    "given_parts",
    "parse_upload_id",
    "plan_parts",
]

MiB = 1024 * 1024
# Direct uploads aim for at most 1,000 parts (fewer URLs to sign and send) by growing parts up to
# 512 MiB; only beyond 500 GiB does the count grow, to S3's 10,000 parts at its 5 TiB object limit.
_TARGET_DIRECT_PARTS = 1000
MAX_DIRECT_PART_SIZE = 512 * MiB
MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB
_MAX_PARTS = 10_000


def plan_parts(size: int) -> list[tuple[int, int, int]]:
    """Splits a direct upload of ``size`` bytes into (part number, offset, length), at least one part.

    Raises:
        InvalidArgument: Over 5 TiB (field ``size``).
    """
    if size > MAX_OBJECT_SIZE:
        raise InvalidArgument(f"size {size} is over the 5 TiB limit of the object store", field="size")
    part_size = max(PART_SIZE, math.ceil(size / _TARGET_DIRECT_PARTS / MiB) * MiB)
    if part_size > MAX_DIRECT_PART_SIZE:
        part_size = max(MAX_DIRECT_PART_SIZE, math.ceil(size / _MAX_PARTS / MiB) * MiB)
    count = max(1, math.ceil(size / part_size))
    assert count <= _MAX_PARTS
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


def encode_upload_id(size: int, s3_upload_id: str) -> str:
    """The upload id clients see: ``<declared size>.<S3 upload id>``.

    The server keeps no state between CreatePresignedUpload and CompletePresignedUpload, so the
    declared size rides in the id and whichever replica completes the upload can check it. A
    client that edits it gains nothing: it could as well have declared another size.
    """
    return f"{size}.{s3_upload_id}"


def parse_upload_id(upload_id: str) -> tuple[int, str]:
    """Splits an id from :func:`encode_upload_id` into the declared size and the S3 upload id.

    Raises:
        InvalidArgument: Not such an id (field ``upload_id``).
    """
    size, dot, s3_upload_id = upload_id.partition(".")
    if not dot or not size.isdigit() or not s3_upload_id:
        raise InvalidArgument("upload_id is not one returned by CreatePresignedUpload", field="upload_id")
    return int(size), s3_upload_id


def given_parts(parts: Sequence[CompletedPart], count: int) -> dict[int, str]:
    """The client's ETag per part number, unquoted; every part 1..count exactly once.

    Raises:
        InvalidArgument: Parts missing, repeated or out of range (field ``parts``).
    """
    given: dict[int, str] = {}
    for part in parts:
        if part.part_number in given or not 1 <= part.part_number <= count:
            raise InvalidArgument(
                f"part numbers must be 1 to {count}, each once; got {part.part_number} "
                f"{'twice' if part.part_number in given else 'out of range'}",
                field="parts",
            )
        given[part.part_number] = part.etag.strip().strip('"')
    missing = [n for n in range(1, count + 1) if n not in given]
    if missing:
        raise InvalidArgument(
            f"{len(missing)} of {count} parts are missing, starting with {missing[0]}", field="parts"
        )
    return given


def check_expiry(expires: timedelta) -> None:
    """Presigned URLs last 1 second to 7 days (the SigV4 limit).

    Raises:
        InvalidArgument: Outside that range (field ``expires``).
    """
    if not timedelta(seconds=1) <= expires <= timedelta(days=7):
        raise InvalidArgument("expiry must be between 1 second and 7 days", field="expires")
