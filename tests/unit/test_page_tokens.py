"""Page tokens: round trips, binding to the request, and refusal of anything damaged or made up."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane_server.store.db.page_tokens import (
    TOKEN_VERSION,
    decode_page_token,
    encode_page_token,
    fingerprint,
)

URLSAFE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FP = fingerprint(["1", "2"], "metrics.acc > 0.9", ["metrics.acc DESC"], 1)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(), json_values, max_size=5)


def rejection(token: str, fp: str = FP) -> str:
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, query_fingerprint=fp)
    assert info.value.field == "page_token"
    return info.value.message


def forge(body: bytes, version: int = TOKEN_VERSION) -> str:
    """A token with a correct check around any body, as a client could build one."""
    head = bytes([version])
    raw = head + hashlib.sha256(head + body).digest()[:8] + body
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_round_trip_of_a_keyset_cursor() -> None:
    payload = {"sort": [0.93, "rf", 1700000000000], "run_id": "a1b2c3"}
    token = encode_page_token(payload, query_fingerprint=FP)
    assert decode_page_token(token, query_fingerprint=FP) == payload


def test_token_is_opaque_and_url_safe() -> None:
    token = encode_page_token({"run_id": "x" * 100, "v": "é/+?&="}, query_fingerprint=FP)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert "run_id" not in token


def test_nan_and_infinities_survive() -> None:
    token = encode_page_token({"v": [math.nan, math.inf, -math.inf, -0.0]}, query_fingerprint=FP)
    values = decode_page_token(token, query_fingerprint=FP)["v"]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 0.0]
    assert math.copysign(1, values[3]) == -1


def test_lone_surrogates_survive() -> None:
    token = encode_page_token({"k": "a\ud800b"}, query_fingerprint=FP)
    assert decode_page_token(token, query_fingerprint=FP) == {"k": "a\ud800b"}


def test_another_request_is_refused() -> None:
    token = encode_page_token({"id": 1}, query_fingerprint=FP)
    other = fingerprint(["1", "2"], "metrics.acc > 0.8", ["metrics.acc DESC"], 1)
    message = rejection(token, other)
    assert message == "page_token does not match this request: the other fields must not change between pages"


def test_another_version_is_refused() -> None:
    body = json.dumps({"q": FP, "p": {}}).encode()
    assert decode_page_token(forge(body), query_fingerprint=FP) == {}
    assert "another version of the server" in rejection(forge(body, version=TOKEN_VERSION + 1))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "abc",
        "!!!!",
        "AAAA====",
        "AQ==",
        " " + "A" * 20,
        "A" * 21,  # a length base64 never makes
        "é" * 16,
        forge(b"not json"),
        forge(b"\xff\xfe"),
        forge(b"[]"),
        forge(b'{"q": "x"}'),
        forge(json.dumps({"q": FP, "p": []}).encode()),
        forge(json.dumps({"q": FP, "p": {}, "x": 1}).encode()),
        forge(b"[" * 100_000 + b"]" * 100_000),
        forge(b'{"q": "' + FP.encode() + b'", "p": {"n": ' + b"9" * 10_000 + b"}}"),
    ],
)
def test_garbage_is_refused(token: str) -> None:
    message = rejection(token)
    assert message.startswith("page_token is not a valid page token")


def test_non_canonical_base64_is_refused() -> None:
    # The last character of an unpadded token has spare bits: decoding alone would accept several
    # spellings of the same bytes. Only the one the encoder makes is a token.
    tokens = (encode_page_token({"a": "x" * n}, query_fingerprint=FP) for n in range(3))
    token = next(t for t in tokens if len(t) % 4)
    twins = [c for c in URLSAFE_ALPHABET if c != token[-1]]
    raw = base64.urlsafe_b64decode(token + "==")
    assert any(base64.urlsafe_b64decode(token[:-1] + c + "==") == raw for c in twins)  # the danger is real
    for twin in twins:
        rejection(token[:-1] + twin)


@settings(max_examples=300)
@given(payload=payloads, parts=st.lists(json_values, max_size=3))
def test_round_trip(payload: dict[str, Any], parts: list[Any]) -> None:
    fp = fingerprint(*parts)
    assert (
        decode_page_token(encode_page_token(payload, query_fingerprint=fp), query_fingerprint=fp) == payload
    )


@settings(max_examples=500)
@given(payload=payloads, data=st.data())
def test_any_edit_is_refused(payload: dict[str, Any], data: st.DataObject) -> None:
    token = encode_page_token(payload, query_fingerprint=FP)
    index = data.draw(st.integers(0, len(token)))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    char = data.draw(st.characters(codec="ascii") | st.sampled_from("AQgw_-="))
    if edit == "replace" and index < len(token) and char != token[index]:
        mutated = token[:index] + char + token[index + 1 :]
    elif edit == "insert":
        mutated = token[:index] + char + token[index:]
    elif edit == "delete" and index < len(token):
        mutated = token[:index] + token[index + 1 :]
    else:
        mutated = token[:index] if index < len(token) else token[:-1]
    rejection(mutated)


@settings(max_examples=300)
@given(token=st.text() | st.text(alphabet=URLSAFE_ALPHABET))
def test_any_text_is_refused_with_invalid_argument(token: str) -> None:
    rejection(token)


@settings(max_examples=200)
@given(payload=payloads, a=st.text(), b=st.text())
def test_other_fingerprints_are_refused(payload: dict[str, Any], a: str, b: str) -> None:
    if fingerprint(a) != fingerprint(b):
        token = encode_page_token(payload, query_fingerprint=fingerprint(a))
        assert "must not change between pages" in rejection(token, fingerprint(b))


def test_public_names_are_pinned() -> None:
    import tracklane_server.store.db.page_tokens as module

    assert sorted(module.__all__) == [
        "TOKEN_VERSION",
        "decode_page_token",
        "encode_page_token",
        "fingerprint",
    ]


def test_fingerprint() -> None:
    fp = fingerprint("filter", ["a DESC"], 3)
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert fp == fingerprint("filter", ["a DESC"], 3)  # stable
    assert fp == fingerprint("filter", ("a DESC",), 3)  # lists and tuples alike
    assert fp != fingerprint("filter", ["a DESC"], 4)
    assert fingerprint("a", "b") != fingerprint("a,b") != fingerprint(["a", "b"])
    assert fingerprint({"x": 1, "y": 2}) == fingerprint({"y": 2, "x": 1})
    assert fingerprint({"b", "a", 1}) == fingerprint({1, "a", "b"})
    assert fingerprint({"a"}) != fingerprint(["a"])
    assert fingerprint() != fingerprint(None)
    with pytest.raises(TypeError, match="cannot hash object"):
        fingerprint(object())
