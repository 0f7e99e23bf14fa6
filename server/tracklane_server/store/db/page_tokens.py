"""Opaque page tokens: keyset cursors bound to the request that made them.

A token is urlsafe base64 (unpadded) of::

    version (1 byte) | check (8 bytes) | body

``body`` is compact JSON ``{"q": <query fingerprint>, "p": <payload>}`` and ``check`` the first 8 bytes
of SHA-256 over version and body, so a truncated or edited token is refused instead of resuming
somewhere else. Future versions keep this 9-byte header so an old token can still be told apart from
a damaged one.

The check is not a signature: anyone can build a token. The payload is a cursor (the last row's sort
values and id, never an offset) and the store binds it as query parameters, so a forged token only
moves the cursor; it must still check the payload's types before using them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from tracklane.exceptions import InvalidArgument

__all__ = ["TOKEN_VERSION", "decode_page_token", "encode_page_token", "fingerprint"]

TOKEN_VERSION: Final = 1
_CHECK_BYTES: Final = 8
_HEADER_BYTES: Final = 1 + _CHECK_BYTES
_URLSAFE: Final = re.compile(r"[A-Za-z0-9_-]*")

_INVALID: Final = (
    "page_token is not a valid page token; pass the previous response's next_page_token unchanged"
)
_MISMATCH: Final = "page_token does not match this request: the other fields must not change between pages"
_OLD_VERSION: Final = "page_token was made by another version of the server; start again without a page token"


def fingerprint(*parts: object) -> str:
    """A short hash of the request fields a token is bound to (filter, order_by, experiment ids...).

    Args:
        parts: JSON-able values (str, int, float, bool, None, lists, tuples, str-keyed dicts) or sets.
            Lists and tuples hash alike; set order does not matter.

    Returns:
        16 hex digits.

    Raises:
        TypeError: A part is not JSON-able; a bug in the caller, not in the request.
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_canonical_set)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _canonical_set(value: object) -> object:
    if isinstance(value, set | frozenset):
        # Sorted by their JSON so mixed types still sort; tagged so a set never hashes like a list.
        items = sorted(json.dumps(v, sort_keys=True, default=_canonical_set) for v in value)
        return {"<set>": items}
    raise TypeError(f"fingerprint() cannot hash {type(value).__name__}; convert it to str or a list")


def encode_page_token(payload: dict[str, Any], *, query_fingerprint: str) -> str:
    """Makes the ``next_page_token`` for a page.

    Args:
        payload: The cursor, JSON-able (str-keyed dicts; tuples come back as lists; NaN and ±inf
            survive, so metric values can be sort keys).
        query_fingerprint: :func:`fingerprint` of the fields that must not change between pages.

    Returns:
        An opaque, URL-safe string.
    """
    body = json.dumps({"q": query_fingerprint, "p": payload}, separators=(",", ":")).encode("ascii")
    head = bytes([TOKEN_VERSION])
    raw = head + _check(head, body) + body
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_page_token(
    token: str, *, query_fingerprint: str, fields: Mapping[str, type | tuple[type, ...]] | None = None
) -> dict[str, Any]:
    """Reads back the payload of a token made by :func:`encode_page_token`.

    An empty token means "first page"; callers handle that before calling this. Anyone can build a
    token that passes the check, so pass ``fields`` to have the payload's shape checked here.

    Args:
        token: The request's ``page_token``.
        query_fingerprint: :func:`fingerprint` of this request's fields, computed as for encoding.
        fields: Payload fields that must be present, with their types (``int`` never matches a
            bool nor anything outside int64; ``float`` matches an int too, as JSON does not tell
            them apart).

    Returns:
        The payload. Reading a field it lacks (``payload["x"]``) raises InvalidArgument, not
        KeyError.

    Raises:
        InvalidArgument: ``field="page_token"``: the token is damaged or made up, comes from another
            token version, or was made for a request with different fields.
    """
    raw = _unbase64(token)
    if raw is None or len(raw) < _HEADER_BYTES:
        raise InvalidArgument(_INVALID, field="page_token")
    head, check, body = raw[:1], raw[1:_HEADER_BYTES], raw[_HEADER_BYTES:]
    if check != _check(head, body):
        raise InvalidArgument(_INVALID, field="page_token")
    if head[0] != TOKEN_VERSION:
        raise InvalidArgument(_OLD_VERSION, field="page_token")
    try:
        decoded = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidArgument(_INVALID, field="page_token") from None
    if not isinstance(decoded, dict) or set(decoded) != {"q", "p"} or not isinstance(decoded["p"], dict):
        raise InvalidArgument(_INVALID, field="page_token")
    if decoded["q"] != query_fingerprint:
        raise InvalidArgument(_MISMATCH, field="page_token")
    payload = _Payload(decoded["p"])
    for name, kind in (fields or {}).items():
        if name not in payload or not _is_a(payload[name], kind):
            raise InvalidArgument(_INVALID, field="page_token")
    return payload


class _Payload(dict[str, Any]):
    """A payload whose missing fields are the token's fault, not the server's."""

    def __missing__(self, key: str) -> Any:
        raise InvalidArgument(_INVALID, field="page_token")


def _is_a(value: object, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return False  # JSON integers are unbounded; database columns are 64-bit
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _check(head: bytes, body: bytes) -> bytes:
    return hashlib.sha256(head + body).digest()[:_CHECK_BYTES]


def _unbase64(token: str) -> bytes | None:
    # urlsafe_b64decode skips characters outside the alphabet and ignores the spare bits of the last
    # character, so two different strings could decode alike; accept only the one encode() makes.
    if not _URLSAFE.fullmatch(token) or len(token) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        return None
    return raw
