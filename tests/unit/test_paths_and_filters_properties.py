"""Property-based tests: artifact paths stay under a real folder; filter strings and keys survive
any quoting; any filter text fails only with a short InvalidArgument on ``filter``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane_server.artifacts.paths import MAX_PATH_BYTES, validate_artifact_path
from tracklane_server.store.query.filter import Comparison, parse_filter, render_identifier
from tracklane_server.store.validation import FILTER_MAX

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NO_NUL = st.characters(exclude_characters="\x00")
# Pieces that have escaped artifact roots elsewhere: separators, dots, drive letters, encodings.
PIECES = st.sampled_from(
    ["a", "..", ".", "/", "\\", "C:", "%2e%2e", "\x00", "~", "é", "\u202e", "..\\", "//", " ", "\n"]
)
T = TypeVar("T")


def attempt(check: Callable[[], T]) -> T | InvalidArgument:
    """The check's result or its InvalidArgument; any other exception fails the test."""
    try:
        return check()
    except InvalidArgument as exc:
        return exc


paths = st.lists(PIECES, max_size=10).map("".join) | st.text(max_size=60)


@FAST
@given(path=paths)
def test_an_accepted_path_resolves_under_a_real_root(tmp_path: Path, path: str) -> None:
    normalized = attempt(lambda: validate_artifact_path(path))
    if isinstance(normalized, InvalidArgument):
        assert normalized.field == "path"
        return
    root = (tmp_path / "run").resolve()
    resolved = (root / normalized).resolve()
    assert resolved.is_relative_to(root)
    assert resolved != root
    assert os.path.commonpath([root, resolved]) == str(root)


@FAST
@given(segments=st.lists(st.sampled_from(["a", "..", "."]), min_size=1, max_size=8))
def test_dot_segments_are_always_refused(segments: list[str]) -> None:
    path = "/".join(segments)
    if not {".", ".."} & set(segments):
        assert validate_artifact_path(path) == path
        return
    with pytest.raises(InvalidArgument, match="segment"):
        validate_artifact_path(path)


@FAST
@given(size=st.integers(MAX_PATH_BYTES + 1, MAX_PATH_BYTES * 3))
def test_over_long_paths_are_refused(size: int) -> None:
    path = "/".join(["d" * 100] * (size // 101 + 1))[:size]
    with pytest.raises(InvalidArgument, match="bytes"):
        validate_artifact_path(path.rstrip("/"))


@FAST
@given(value=st.text(NO_NUL, max_size=40), quote=st.sampled_from(["'", '"']))
def test_any_string_value_round_trips_through_either_quote(value: str, quote: str) -> None:
    literal = quote + value.replace(quote, quote * 2) + quote
    assert parse_filter(f"tags.t = {literal}") == [Comparison("tag", "t", "=", value)]
    assert parse_filter(f"params.p LIKE {literal}") == [Comparison("param", "p", "LIKE", value)]


@FAST
@given(key=st.text(NO_NUL, min_size=1, max_size=40))
def test_any_key_round_trips_through_backquotes(key: str) -> None:
    assert parse_filter(f"{render_identifier('metric', key)} > 1") == [Comparison("metric", key, ">", 1.0)]
    backquoted = "`" + key.replace("`", "``") + "`"
    assert parse_filter(f"tags.{backquoted} IS NULL") == [Comparison("tag", key, "IS NULL", None)]


@FAST
@given(
    text=st.text(max_size=200)
    | st.lists(st.sampled_from(["'", "`", '"', "AND", " ", "tags.a", "=", "1"])).map(" ".join)
)
def test_any_text_parses_or_fails_with_a_short_message_on_filter(text: str) -> None:
    result = attempt(lambda: parse_filter(text))
    if isinstance(result, InvalidArgument):
        assert result.field == "filter"
        assert result.message.startswith("filter: ")
        assert len(result.message) < 400  # status messages travel in headers of at most 16 KiB


def test_the_filter_limit_is_inclusive() -> None:
    at_limit = "tags.t = '" + "x" * (FILTER_MAX - 11) + "'"
    assert len(at_limit) == FILTER_MAX
    assert parse_filter(at_limit) == [Comparison("tag", "t", "=", "x" * (FILTER_MAX - 11))]
    with pytest.raises(InvalidArgument, match="longer than"):
        parse_filter(at_limit + " ")
