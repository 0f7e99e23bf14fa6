"""The bytes-carrying artifact messages, encoded and decoded without copying their payload twice.

Building a protobuf message from a 2-4 MiB chunk and serializing it copies the chunk twice;
parsing and reading ``.chunk`` copies it twice again. At several hundred MiB/s on a small machine
those copies are most of a transfer's CPU, so the two streaming RPCs carry these messages as raw
bytes: ``chunk`` (field 2, length-delimited) is written straight after its tag and length, and read
back as a memoryview of the received message. Anything else (the header or file description in
field 1, unknown fields) goes through the generated classes, so the wire format is exactly the
one in ``artifacts.proto`` and other clients are unaffected.
"""

from __future__ import annotations

from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]
from google.protobuf.internal.encoder import _VarintBytes  # type: ignore[attr-defined]

from tracklane.v1 import artifacts_pb2

__all__ = ["chunk_message", "chunk_message_of", "parse_download_message", "parse_upload_message"]

_FIELD1 = 0x0A  # field 1, length-delimited: header / file
_CHUNK = 0x12  # field 2, length-delimited: chunk


def chunk_message(chunk: bytes, first: bytes = b"") -> bytes:
    """A serialized message with ``chunk`` (field 2), after ``first`` (field 1, serialized) if any."""
    parts = [bytes([_CHUNK]), _VarintBytes(len(chunk)), chunk] if chunk else []
    if first:
        parts[:0] = [bytes([_FIELD1]), _VarintBytes(len(first)), first]
    return b"".join(parts)


def chunk_message_of(pieces: list[bytes], size: int) -> bytes:
    """A serialized message whose ``chunk`` is ``pieces`` joined (``size`` bytes), in one copy."""
    return b"".join([bytes([_CHUNK]), _VarintBytes(size), *pieces])


def _single_chunk(raw: bytes) -> memoryview | None:
    """The chunk when ``raw`` is exactly one field-2 record (the usual case); None otherwise."""
    if not raw or raw[0] != _CHUNK:
        return None
    length, start = _DecodeVarint(raw, 1)
    if start + length != len(raw):
        return None
    return memoryview(raw)[start:]


def parse_upload_message(raw: bytes) -> tuple[artifacts_pb2.UploadHeader | None, bytes | memoryview]:
    """A received UploadArtifactRequest as (header or None, chunk bytes)."""
    chunk = _single_chunk(raw)
    if chunk is not None:
        return None, chunk
    message = artifacts_pb2.UploadArtifactRequest.FromString(raw)
    if message.HasField("header"):
        return message.header, b""
    return None, message.chunk


def parse_download_message(raw: bytes) -> tuple[artifacts_pb2.FileInfo | None, bytes | memoryview]:
    """A received DownloadArtifactResponse as (file description or None, chunk bytes)."""
    chunk = _single_chunk(raw)
    if chunk is not None:
        return None, chunk
    if raw and raw[0] == _FIELD1:  # the first message: file, then chunk, as the server sends it
        length, start = _DecodeVarint(raw, 1)
        rest = raw[start + length :]
        chunk = _single_chunk(rest) if rest else memoryview(b"")
        if chunk is not None:
            return artifacts_pb2.FileInfo.FromString(raw[start : start + length]), chunk
    message = artifacts_pb2.DownloadArtifactResponse.FromString(raw)
    return (message.file if message.HasField("file") else None), message.chunk
