"""Property-based tests of the key/value checks, the filter limits and the request checks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import pytest
from google.protobuf.message import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane.v1 import registry_pb2, tracking_pb2
from tracklane_server.services.request_checks import FIELD_MAX, check_request
from tracklane_server.store.query.filter import parse_filter, parse_order_by
from tracklane_server.store.validation import (
    FILTER_MAX,
    KEY_MAX,
    ORDER_BY_MAX,
    TEXT_MAX,
    check_key,
    check_text,
)

FAST = settings(max_examples=200, deadline=None)
T = TypeVar("T")


def attempt(check: Callable[[], T]) -> T | InvalidArgument:
    """The check's result or its InvalidArgument; any other exception fails the test."""
    try:
        return check()
    except InvalidArgument as exc:
        return exc


# The alphabet as documented: letters (any script), digits, `_ - . / space`.
KEY_CHARS = st.characters(categories=["Lu", "Ll", "Lt", "Lm", "Lo", "Nd"]) | st.sampled_from("_-. /")
valid_keys = (
    st.text(KEY_CHARS, min_size=1, max_size=KEY_MAX)
    .filter(lambda k: not k.startswith("/") and ".." not in k.split("/"))
    .filter(lambda k: re.fullmatch(r"[\w\-. /]+", k) is not None)
)


@FAST
@given(valid_keys)
def test_keys_in_the_alphabet_are_accepted_unchanged(key: str) -> None:
    assert check_key(key, "params[0].key") == key


@FAST
@given(st.text(max_size=300))
def test_any_key_is_accepted_or_refused_naming_the_field(key: str) -> None:
    accepted = attempt(lambda: check_key(key, "tags[3].key"))
    if isinstance(accepted, InvalidArgument):
        assert accepted.field == "tags[3].key"
        assert str(accepted).startswith("tags[3].key: ")
        return
    assert accepted == key
    assert 1 <= len(key) <= KEY_MAX
    assert re.fullmatch(r"[\w\-. /]+", key)
    assert not key.startswith("/")
    assert ".." not in key.split("/")


@FAST
@given(valid_keys, st.sampled_from(["'", '"', "`", ";", "%", "*", "\x00", "\n", "\u202e", "🚀", "\\", ":"]))
def test_a_key_with_any_character_outside_the_alphabet_is_refused(key: str, bad: str) -> None:
    middle = len(key) // 2
    with pytest.raises(InvalidArgument) as info:
        check_key(key[:middle] + bad + key[middle:], "metrics[0].key")
    assert info.value.field == "metrics[0].key"


@FAST
@given(st.integers(KEY_MAX + 1, KEY_MAX * 4))
def test_long_keys_are_refused(length: int) -> None:
    with pytest.raises(InvalidArgument, match="longer than 250"):
        check_key("k" * length, "key")


@FAST
@given(st.text(max_size=200), st.integers(0, 200))
def test_text_is_kept_exactly_within_its_limit(text: str, limit: int) -> None:
    result = attempt(lambda: check_text(text, "description", limit))
    if isinstance(result, InvalidArgument):
        assert result.field == "description"
        assert len(text) > limit or "\x00" in text
    else:
        assert result == text
        assert len(text) <= limit
        assert "\x00" not in text


@FAST
@given(st.text(max_size=50), st.text(max_size=50))
def test_a_nul_anywhere_in_a_filter_is_refused_at_its_column(before: str, after: str) -> None:
    text = before + "\x00" + after
    with pytest.raises(InvalidArgument) as info:
        parse_filter(text)
    assert info.value.field == "filter"


@FAST
@given(st.integers(FILTER_MAX + 1, FILTER_MAX * 2))
def test_filters_over_the_limit_are_refused_before_parsing(length: int) -> None:
    text = "params.p = '" + "x" * length + "'"
    with pytest.raises(InvalidArgument, match=f"longer than {FILTER_MAX}") as info:
        parse_filter(text)
    assert info.value.field == "filter"


@FAST
@given(st.integers(ORDER_BY_MAX + 1, ORDER_BY_MAX * 5))
def test_order_by_over_the_limit_is_refused(count: int) -> None:
    assert len(parse_order_by(["start_time"] * ORDER_BY_MAX)) == ORDER_BY_MAX
    with pytest.raises(InvalidArgument) as info:
        parse_order_by(["start_time"] * count)
    assert info.value.field == "order_by"


# -- request checks -----------------------------------------------------------------------------------------


@FAST
@given(st.sampled_from(sorted(FIELD_MAX)), st.text(max_size=80), st.integers(0, 3))
def test_request_strings_are_refused_for_nul_or_length_naming_the_field(
    name: str, text: str, extra: int
) -> None:
    request = _request_with(name)
    if request is None:
        return
    value = text if extra == 0 else text + "x" * (FIELD_MAX[name] + extra)
    field = request.DESCRIPTOR.fields_by_name[name]
    if field.is_repeated:
        getattr(request, name).append(value)
    else:
        setattr(request, name, value)
    result = attempt(lambda: check_request(request))
    if isinstance(result, InvalidArgument):
        assert result.field in (name, f"{name}[0]")
        assert len(value) > FIELD_MAX[name] or "\x00" in value
    else:
        assert len(value) <= FIELD_MAX[name]
        assert "\x00" not in value


def _request_with(name: str) -> Message | None:
    """Some request message with a top-level field ``name``."""
    for module in (tracking_pb2, registry_pb2):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            if message.name.endswith("Request") and name in message.fields_by_name:
                request: Message = getattr(module, message.name)()
                return request
    return None


@FAST
@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1))
def test_timestamps_outside_years_1_to_9999_are_refused(seconds: int, nanos: int) -> None:
    request = tracking_pb2.CreateRunRequest(start_time={"seconds": seconds, "nanos": nanos})
    in_range = -62_135_596_800 <= seconds <= 253_402_300_799 and 0 <= nanos <= 999_999_999
    result = attempt(lambda: check_request(request))
    if isinstance(result, InvalidArgument):
        assert result.field == "start_time"
        assert not in_range
    else:
        assert in_range
        assert -(2**63) < request.start_time.ToMilliseconds() < 2**63


def test_free_text_fields_have_the_general_limit() -> None:
    check_request(tracking_pb2.CreateExperimentRequest(description="d" * TEXT_MAX))
    with pytest.raises(InvalidArgument) as info:
        check_request(tracking_pb2.CreateExperimentRequest(description="d" * (TEXT_MAX + 1)))
    assert info.value.field == "description"
