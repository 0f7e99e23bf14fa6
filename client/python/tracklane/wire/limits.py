"""The key rules and size limits client and server both apply (the README documents each).

The client checks a metric key at the first ``log_metric``, with the server's rule: a bad key is
refused there, not later in a batch where it would take other keys' points down with it.
"""

from __future__ import annotations

import re

__all__ = ["KEY_MAX", "MAX_CHUNK_BYTES", "MAX_MESSAGE_BYTES", "is_valid_key"]

#: Longest metric, param or tag key, in characters (MLflow's limit).
KEY_MAX = 250
#: Largest gRPC message either side sends by default (and the client accepts).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Largest artifact chunk the server accepts in one upload message.
MAX_CHUNK_BYTES = 4 * 1024 * 1024

# MLflow's key alphabet: letters, digits, underscore, dash, period, space and slash.
_KEY_RE = re.compile(r"[\w\-. /]+")


def is_valid_key(key: str) -> bool:
    """Whether a non-empty key of at most :data:`KEY_MAX` characters uses the key alphabet and is
    a relative path without ``..`` segments (the length is checked apart, for its own message)."""
    return bool(_KEY_RE.fullmatch(key)) and not key.startswith("/") and ".." not in key.split("/")
