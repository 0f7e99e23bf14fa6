"""Limits and checks on names, keys and values. Every limit is documented in the README.

MLflow allows 1,000 metrics / 100 params / 100 tags per batch, keys of 250 characters and param
values of 6,000. Ours are higher where it costs nothing: values are TEXT columns either way.
"""

from __future__ import annotations

import unicodedata

from tracklane.exceptions import InvalidArgument
from tracklane.wire.limits import KEY_MAX, is_valid_key

EXPERIMENT_NAME_MAX = 500
RUN_NAME_MAX = 250
PARAM_VALUE_MAX = 65_536
TAG_VALUE_MAX = 65_536
DESCRIPTION_MAX = 65_536
BATCH_METRICS_MAX = 100_000
BATCH_PARAMS_MAX = 1_000
BATCH_TAGS_MAX = 1_000
PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 1_000
# Search requests: a filter is parsed in linear time, but each comparison adds a join.
FILTER_MAX = 16_384
ORDER_BY_MAX = 10
SEARCH_EXPERIMENT_IDS_MAX = 1_000
# Any string field of a request; the tighter limits above and below apply where they exist.
TEXT_MAX = 65_536
# Columns with a fixed width (schema.py); longer values would be a database error.
ID_MAX = 64
USER_ID_MAX = 256
REQUEST_ID_MAX = 128
ALIAS_MAX = 255

# Unicode categories a name may not contain: control (Cc: tabs, newlines, escapes), format (Cf:
# zero-width characters, bidi overrides, the BOM), line and paragraph separators, surrogates. They
# forge log lines and make lookalikes ("prod" and "pro\u200bd") that people cannot tell apart.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def check_key(key: str, field: str) -> str:
    """A metric, param or tag key: 1-250 characters of letters, digits, ``_ - . / space``."""
    if not key:
        raise InvalidArgument(f"{field}: must not be empty", field=field)
    if len(key) > KEY_MAX:
        raise InvalidArgument(f"{field}: longer than {KEY_MAX} characters ({len(key)})", field=field)
    if not is_valid_key(key):
        raise InvalidArgument(
            f"{field}: {key[:50]!r} may only contain letters, digits, '_', '-', '.', ' ' and '/' "
            "and must not start with '/' or contain a '..' segment",
            field=field,
        )
    return key


def normalize_name(name: str) -> str:
    """A name in Unicode NFC, the form names are stored and compared in (so ``"é"`` typed as one
    code point and as ``e`` plus a combining accent is one name, not two lookalikes)."""
    return unicodedata.normalize("NFC", name)


def check_name(name: str, field: str, limit: int, *, required: bool = True) -> str:
    """An experiment, run or registered-model name: visible text, returned in NFC.

    Raises:
        InvalidArgument: Empty (when ``required``), too long, or containing a control, format or
            separator character (field ``field``).
    """
    name = normalize_name(name)
    check_text(name, field, limit, required=required)
    for char in name:
        if unicodedata.category(char) in _INVISIBLE:
            raise InvalidArgument(
                f"{field}: contains the invisible or control character U+{ord(char):04X}; names are "
                "visible text (no tabs, newlines, zero-width or bidi control characters)",
                field=field,
            )
    return name


def check_text(value: str, field: str, limit: int, *, required: bool = False) -> str:
    """A free-text value: at most ``limit`` characters, no NUL (PostgreSQL cannot store it)."""
    if required and not value.strip():
        raise InvalidArgument(f"{field}: must not be empty", field=field)
    if len(value) > limit:
        raise InvalidArgument(f"{field}: longer than {limit} characters ({len(value)})", field=field)
    if "\x00" in value:
        raise InvalidArgument(f"{field}: must not contain NUL characters", field=field)
    return value


def check_count(items: int, limit: int, field: str) -> None:
    """A repeated field's length."""
    if items > limit:
        raise InvalidArgument(f"{field}: at most {limit} items per request, got {items}", field=field)


def page_size(requested: int, *, default: int = PAGE_SIZE_DEFAULT, maximum: int = PAGE_SIZE_MAX) -> int:
    """0 means the default; negatives are an error; large values are capped."""
    if requested < 0:
        raise InvalidArgument("page_size: must not be negative", field="page_size")
    return min(requested or default, maximum)
