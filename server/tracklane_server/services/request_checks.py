"""Checks every request's top-level fields before its handler runs: the rules no store should repeat.

* Strings: no NUL (PostgreSQL text cannot hold it, so it would fail as a database error), and ids,
  names and keys no longer than any stored one can be (an error echoing a 1 MB id would also
  overflow gRPC's 16 KiB limit on the status message).
* Timestamps: within the range ``google.protobuf.Timestamp`` defines (years 1-9999), which also
  keeps their milliseconds inside a 64-bit column.
* Enums: only the numbers the .proto declares; proto3 lets a client send any.
* Names (experiments', runs', registered models'): rewritten in place to Unicode NFC, the form they
  are stored in, so a lookup typed in another normal form finds them (the store refuses invisible
  characters in the names it creates).

Nested messages (tags, metrics, datasets) are checked field by field by the store, which knows
their limits; walking them here would cost a LogBatch of 100,000 metrics too much.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tracklane.exceptions import InvalidArgument
from tracklane.wire.limits import KEY_MAX
from tracklane_server.store.validation import (
    ALIAS_MAX,
    EXPERIMENT_NAME_MAX,
    ID_MAX,
    REQUEST_ID_MAX,
    TEXT_MAX,
    USER_ID_MAX,
    normalize_name,
)

__all__ = ["check_request", "checked_requests"]

# Limits by field name, the same in every request that has the field. Names get the largest
# name limit (experiments'); the store applies the tighter one where it differs.
FIELD_MAX: dict[str, int] = {
    "run_id": ID_MAX,
    "run_ids": ID_MAX,
    "parent_run_id": ID_MAX,
    "experiment_id": ID_MAX,
    "experiment_ids": ID_MAX,
    "request_id": REQUEST_ID_MAX,
    "user_id": USER_ID_MAX,
    "name": EXPERIMENT_NAME_MAX,
    "new_name": EXPERIMENT_NAME_MAX,
    "destination_name": EXPERIMENT_NAME_MAX,
    "key": KEY_MAX,
    "keys": KEY_MAX,
    "alias": ALIAS_MAX,
}
# Fields holding a resource's name, in every request that has them.
NAME_FIELDS = frozenset({"name", "new_name", "destination_name", "run_name"})
# Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_SECONDS_MIN, _SECONDS_MAX = -62_135_596_800, 253_402_300_799
_NANOS_MAX = 999_999_999

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=type)


def check_request(request: Message) -> None:
    """Raises InvalidArgument naming the first top-level field that breaks a rule above; names
    come out in NFC."""
    renamed: dict[str, str] = {}
    for field, value in request.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            items = value if _repeated(field) else [value]
            limit = FIELD_MAX.get(field.name, TEXT_MAX)
            for i, item in enumerate(items):
                _check_string(item, f"{field.name}[{i}]" if _repeated(field) else field.name, limit)
            if field.name in NAME_FIELDS and not _repeated(field) and normalize_name(value) != value:
                renamed[field.name] = normalize_name(value)
        elif field.enum_type is not None:
            items = value if _repeated(field) else [value]
            for i, item in enumerate(items):
                if item not in field.enum_type.values_by_number:
                    name = f"{field.name}[{i}]" if _repeated(field) else field.name
                    known = ", ".join(v.name for v in field.enum_type.values)
                    raise InvalidArgument(f"{name}: unknown value {item}; use one of {known}", field=name)
        elif _is_timestamp(field) and not (
            _SECONDS_MIN <= value.seconds <= _SECONDS_MAX and 0 <= value.nanos <= _NANOS_MAX
        ):
            raise InvalidArgument(
                f"{field.name}: out of range; a time must lie between the years 1 and 9999",
                field=field.name,
            )
    for name, value in renamed.items():
        setattr(request, name, value)


def checked_requests(cls: S) -> S:
    """Class decorator: every RPC method of a servicer whose request is one message checks it first.

    Client-streaming methods are left alone (their messages arrive one by one in the handler).
    """
    for name, method in list(vars(cls).items()):
        if not name[:1].isupper() or not callable(method) or _client_streaming(method):
            continue
        if inspect.isasyncgenfunction(method):
            setattr(cls, name, _checked_stream(method))
        elif inspect.iscoroutinefunction(method):
            setattr(cls, name, _checked_unary(method))
    return cls


def _check_string(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidArgument(f"{field}: longer than {limit} characters ({len(value)})", field=field)
    if "\x00" in value:
        raise InvalidArgument(f"{field}: must not contain NUL characters", field=field)


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_timestamp(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp"


def _client_streaming(method: Callable[..., Any]) -> bool:
    # Servicer methods name their first argument `request` or `request_iterator` (generated code).
    params = list(inspect.signature(method).parameters)
    return len(params) > 1 and params[1] == "request_iterator"


def _checked_unary(method: F) -> F:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Message, context: Any) -> Any:
        check_request(request)
        return await method(self, request, context)

    return wrapper  # type: ignore[return-value]


def _checked_stream(method: F) -> F:
    @functools.wraps(method)
    async def wrapper(self: Any, request: Message, context: Any) -> Any:
        check_request(request)
        async for item in method(self, request, context):
            yield item

    return wrapper  # type: ignore[return-value]
