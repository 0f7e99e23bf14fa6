"""Property-based tests of forged page tokens: a made-up payload that passes the check must still be
refused with InvalidArgument on ``page_token`` when its shape is wrong, never reach the store."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint

FAST = settings(max_examples=200, deadline=None)
FP = fingerprint("history", "run", "m")
INT64 = range(-(2**63), 2**63)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
payloads = st.dictionaries(st.sampled_from(["step", "skip", "after", "x"]), json_values, max_size=4)


@FAST
@given(payloads)
def test_forged_payloads_are_refused_unless_they_have_the_expected_shape(payload: dict[str, Any]) -> None:
    token = encode_page_token(payload, query_fingerprint=FP)
    fields = {"step": int, "skip": int, "after": str}
    shaped = (
        all(name in payload for name in fields)
        and all(type(payload[name]) is int and payload[name] in INT64 for name in ("step", "skip"))
        and isinstance(payload["after"], str)
    )
    if not shaped:
        with pytest.raises(InvalidArgument) as info:
            decode_page_token(token, query_fingerprint=FP, fields=fields)
        assert info.value.field == "page_token"
        return
    decoded = decode_page_token(token, query_fingerprint=FP, fields=fields)
    assert {name: decoded[name] for name in fields} == {name: payload[name] for name in fields}


@FAST
@given(payloads, st.sampled_from(["step", "skip", "after", "x", "i"]))
def test_reading_a_missing_field_is_invalid_argument(payload: dict[str, Any], name: str) -> None:
    decoded = decode_page_token(encode_page_token(payload, query_fingerprint=FP), query_fingerprint=FP)
    if name in payload:
        assert repr(decoded[name]) == repr(payload[name])  # repr: NaN, also inside lists, equals itself
        return
    with pytest.raises(InvalidArgument) as info:
        decoded[name]
    assert info.value.field == "page_token"


def test_float_fields_take_whole_numbers_and_infinities() -> None:
    for value in (1, 1.5, float("inf"), -(2**63)):
        token = encode_page_token({"v": value}, query_fingerprint=FP)
        assert decode_page_token(token, query_fingerprint=FP, fields={"v": float})["v"] == value
    for value in (True, "1", None, [1.0], 2**64):
        token = encode_page_token({"v": value}, query_fingerprint=FP)
        with pytest.raises(InvalidArgument):
            decode_page_token(token, query_fingerprint=FP, fields={"v": float})
