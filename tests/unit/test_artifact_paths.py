"""Artifact path validation: every traversal trick refused, every ordinary name accepted unchanged."""

from __future__ import annotations

import os
import posixpath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tracklane.exceptions import InvalidArgument
from tracklane_server.artifacts.paths import (
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    join_key,
    validate_artifact_path,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.pt", "model.pt"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("plots/", "plots"),  # one trailing slash names the folder
        (".hidden", ".hidden"),
        ("..dots", "..dots"),
        ("a/...", "a/..."),
        ("a b/ c ", "a b/ c "),
        ("ünï/中文 名/🚀.json", "ünï/中文 名/🚀.json"),
        ("dir/a:b", "dir/a:b"),
        ("ab:c", "ab:c"),
        ("1:x", "1:x"),
        ("x" * MAX_SEGMENT_BYTES, "x" * MAX_SEGMENT_BYTES),
        ("é" * (MAX_SEGMENT_BYTES // 2), "é" * (MAX_SEGMENT_BYTES // 2)),
        ("/".join(["y" * 200] * 5) + "/" + "z" * 19, "/".join(["y" * 200] * 5) + "/" + "z" * 19),
    ],
)
def test_valid_paths(path: str, expected: str) -> None:
    assert validate_artifact_path(path) == expected


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "must not be empty"),
        ("/", "is absolute"),
        ("/etc/passwd", "is absolute"),
        ("//server/share", "is absolute"),
        ("\\\\server\\share", "is absolute"),
        ("\\x", "is absolute"),
        ("C:\\x", "backslash"),
        ("C:/x", "drive letter"),
        ("c:", "drive letter"),
        ("d:x", "drive letter"),
        ("a:b/c", "drive letter"),
        ("a\\b", "backslash"),
        ("..", "'..' segment"),
        ("../x", "'..' segment"),
        ("a/../../x", "'..' segment"),
        ("a/..", "'..' segment"),
        ("a/../", "'..' segment"),
        (".", "'.' segment"),
        ("./a", "'.' segment"),
        ("a/./b", "'.' segment"),
        ("a//b", "empty segment"),
        ("a//", "empty segment"),
        ("a/b//", "empty segment"),
        ("a\x00b", "U+0000"),
        ("a\nb", "U+000A"),
        ("tab\there", "U+0009"),
        ("del\x7f", "U+007F"),
        ("c1\x85", "U+0085"),
        ("x" * (MAX_SEGMENT_BYTES + 1), "256-byte segment"),
        ("é" * 128, "256-byte segment"),
        ("/".join(["y" * 200] * 6), "bytes of UTF-8"),
        ("a/\udc80", "not valid Unicode"),
    ],
)
def test_invalid_paths(path: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match="artifact path") as info:
        validate_artifact_path(path)
    assert problem in info.value.message
    assert info.value.field == "path"
    assert "\n" not in info.value.message
    assert len(info.value.message) < 200


def test_field_and_empty() -> None:
    assert validate_artifact_path("", allow_empty=True) == ""
    with pytest.raises(InvalidArgument) as info:
        validate_artifact_path("../x", field="header.path")
    assert info.value.field == "header.path"
    with pytest.raises(InvalidArgument) as info:
        validate_artifact_path("/", allow_empty=True)
    assert info.value.field == "path"


def test_length_limit_is_in_bytes() -> None:
    path = "/".join(["中" * 80] * 5)  # 404 characters, 1204 bytes
    assert len(path) < MAX_PATH_BYTES < len(path.encode())
    with pytest.raises(InvalidArgument, match="bytes of UTF-8"):
        validate_artifact_path(path)


@pytest.mark.parametrize(
    ("prefix", "relative", "key"),
    [
        ("", "", ""),
        ("", "a/b", "a/b"),
        ("p", "", "p"),
        ("p/", "", "p"),
        ("p/q", "a", "p/q/a"),
        ("p/q/", "a/b", "p/q/a/b"),
    ],
)
def test_join_key(prefix: str, relative: str, key: str) -> None:
    assert join_key(prefix, relative) == key


# Paths built from the pieces that matter: separators, dots, drive letters, control characters.
_PIECES = st.sampled_from(
    ["a", "b", ".", "..", "...", "/", "//", "\\", "C:", "\x00", "\n", " ", "é", "中", "~"]
)
_TRICKY = st.lists(_PIECES, max_size=12).map("".join)


@given(st.one_of(_TRICKY, st.text(max_size=40)))
@example("a/../../etc/passwd")
@example("a/.")
@example("../")
@example("C:x")
def test_accepted_paths_stay_under_the_root(path: str) -> None:
    try:
        normalized = validate_artifact_path(path)
    except InvalidArgument:
        return
    segments = normalized.split("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert not normalized.startswith(("/", "\\"))
    assert "\\" not in normalized
    assert "\x00" not in normalized
    assert len(normalized.encode()) <= MAX_PATH_BYTES
    assert all(len(segment.encode()) <= MAX_SEGMENT_BYTES for segment in segments)
    # Joined under a root, it stays under it, both as a file path and as an S3 key.
    root = "/srv/artifacts/1/run"
    joined = posixpath.normpath(posixpath.join(root, normalized))
    assert joined.startswith(root + "/")
    assert os.path.commonpath([root, joined]) == root
    key = join_key("prefix/1/run", normalized)
    assert key.startswith("prefix/1/run/")
    assert posixpath.normpath(key) == key
    # Validation is idempotent.
    assert validate_artifact_path(normalized) == normalized


@given(
    st.lists(st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=20), min_size=1)
)
def test_ordinary_names_are_accepted_unchanged(segments: list[str]) -> None:
    path = "/".join(segment.replace("/", "_").replace("\\", "_") for segment in segments)
    if any(s in ("", ".", "..") for s in path.split("/")) or len(path.encode()) > MAX_PATH_BYTES:
        return
    if path[:2].endswith(":") and path[0].isascii() and path[0].isalpha():
        return  # a drive letter
    assert validate_artifact_path(path) == path
