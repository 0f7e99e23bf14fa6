"""API token secrets: generation, hashing and comparison.

A bearer token is ``tlk_`` followed by 43 URL-safe characters (256 random bits); the prefix lets
secret scanners and people recognise it. The server stores only the hex SHA-256 of the whole
bearer string and looks tokens up by that hash: a plain hash suffices because the secret has full
entropy (nothing to brute-force, unlike a password), and the lookup never compares secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from tracklane.exceptions import InvalidArgument

__all__ = [
    "MIN_SECRET_LENGTH",
    "PREFIX",
    "check_supplied_secret",
    "child_expire_time",
    "hash_secret",
    "hashes_match",
    "new_secret",
    "new_token_id",
]

PREFIX = "tlk_"
#: A secret supplied by an operator (the bootstrap variable) must be at least this long.
MIN_SECRET_LENGTH = 32
_MAX_SECRET_LENGTH = 1024


def new_secret() -> str:
    """A fresh bearer token, ``tlk_<43 URL-safe characters>``."""
    return PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    """An opaque id for listing and revoking; not secret."""
    return secrets.token_hex(8)


def hash_secret(secret: str) -> str:
    """What is stored and looked up: hex SHA-256 of the bearer string."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def hashes_match(stored: str, presented: str) -> bool:
    """Constant-time comparison of two hex hashes."""
    return hmac.compare_digest(stored.encode(), presented.encode())


def check_supplied_secret(secret: str, source: str) -> None:
    """Refuses a supplied secret that is too short or not printable ASCII; never echoes it.

    Raises:
        InvalidArgument: ``field`` is ``source``.
    """
    if not MIN_SECRET_LENGTH <= len(secret) <= _MAX_SECRET_LENGTH:
        raise InvalidArgument(
            f"{source}: a token must have {MIN_SECRET_LENGTH} to {_MAX_SECRET_LENGTH} characters",
            field=source,
        )
    if not secret.isascii() or not secret.isprintable() or " " in secret:
        raise InvalidArgument(f"{source}: a token must be printable ASCII without spaces", field=source)


DAY_MS = 86_400_000


def child_expire_time(requested: int, parent: int, max_days: int, now: int) -> int:
    """When a token made with a token expires (epoch ms; 0: never): as ``requested``, never after
    the ``parent`` token (the one making the call) nor past ``max_days`` from ``now`` (0: no
    maximum). Unset (0) means as late as allowed.

    Raises:
        InvalidArgument: ``requested`` is later than allowed (``field`` is ``expire_time``).
    """
    ceiling = now + max_days * DAY_MS if max_days else 0
    latest = min((t for t in (parent, ceiling) if t), default=0)
    if not requested or not latest or requested <= latest:
        return requested or latest
    when = datetime.fromtimestamp(latest / 1000, UTC).isoformat(timespec="seconds")
    why = (
        "the token making this call expires then, and a token cannot outlive the one that made it"
        if latest == parent
        else f"this server makes tokens of at most {max_days} days (--max-token-days)"
    )
    raise InvalidArgument(f"expire_time: must be no later than {when}: {why}", field="expire_time")
