"""The hand-framed artifact messages are the generated ones, byte for byte, both ways."""

from __future__ import annotations

import pytest

from tracklane.v1 import artifacts_pb2
from tracklane.wire.artifacts import chunk_message, parse_download_message, parse_upload_message

CHUNKS = [b"", b"x", bytes(range(256)) * 600, b"\x12\x00" * 70_000]


@pytest.mark.parametrize("chunk", CHUNKS, ids=["empty", "one", "150k", "tag-like"])
def test_chunk_messages_match_the_generated_encoding(chunk: bytes) -> None:
    info = artifacts_pb2.FileInfo(path="a/b.bin", size=len(chunk), sha256="ab" * 32)
    assert chunk_message(chunk) == artifacts_pb2.DownloadArtifactResponse(chunk=chunk).SerializeToString()
    first = chunk_message(chunk, info.SerializeToString())
    assert artifacts_pb2.DownloadArtifactResponse.FromString(first) == artifacts_pb2.DownloadArtifactResponse(
        file=info, chunk=chunk
    )
    assert artifacts_pb2.UploadArtifactRequest.FromString(chunk_message(chunk)).chunk == chunk
    parsed_info, parsed = parse_download_message(first)
    assert (parsed_info, bytes(parsed)) == (info, chunk)
    assert parse_upload_message(chunk_message(chunk)) == (None, chunk)


def test_other_encodings_fall_back_to_the_generated_parser() -> None:
    header = artifacts_pb2.UploadHeader(run_id="r", path="p", size=3)
    raw = artifacts_pb2.UploadArtifactRequest(header=header).SerializeToString()
    assert parse_upload_message(raw) == (header, b"")
    # Unknown fields (a newer client) around the chunk: still read correctly.
    unknown = b"\x18\x05"  # field 3, varint 5
    assert parse_upload_message(chunk_message(b"abc") + unknown) == (None, b"abc")
    info = artifacts_pb2.FileInfo(path="f")
    reordered = chunk_message(b"data") + chunk_message(b"", info.SerializeToString())
    assert parse_download_message(reordered) == (info, b"data")
    assert parse_download_message(b"") == (None, b"")
