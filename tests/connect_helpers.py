"""Speaks the Connect protocol over real HTTP (httpx), as a browser's Connect client does.

Unary: ``POST /SERVICE/METHOD`` with ``application/proto`` (or ``application/json``), the message
as the body; an error is a non-200 status with a JSON body ``{"code", "message", "details"}``.
Server streaming: ``application/connect+proto`` bodies of envelopes (flags byte, 4-byte big-endian
length, payload); the last envelope has flag 0x02 and holds the end-of-stream JSON (an error, if
any). Details decode as google.rpc messages, the way the UI reads the field a refusal names.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from google.protobuf.message import Message
from google.rpc import error_details_pb2

M = TypeVar("M", bound=Message)

END_STREAM = 0x02


@dataclass
class ConnectFailure(Exception):
    """A Connect error as the wire gave it."""

    http_status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        """The fields the google.rpc.BadRequest detail names."""
        names = []
        for detail in self.details:
            if detail["type"] == "google.rpc.BadRequest":
                bad = error_details_pb2.BadRequest.FromString(_b64(detail["value"]))
                names.extend(v.field for v in bad.field_violations)
        return names

    @property
    def reasons(self) -> list[str]:
        """The reasons of the google.rpc.ErrorInfo details."""
        return [
            error_details_pb2.ErrorInfo.FromString(_b64(d["value"])).reason
            for d in self.details
            if d["type"] == "google.rpc.ErrorInfo"
        ]


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _failure(status: int, body: Mapping[str, Any]) -> ConnectFailure:
    return ConnectFailure(
        status, body.get("code", ""), body.get("message", ""), list(body.get("details", []))
    )


def unary(
    http: httpx.Client, method: str, request: Message, response_type: type[M], headers: Mapping[str, str] = {}
) -> M:
    """One unary call in binary protobuf. ``method`` is ``Service/Method`` or ``/pkg.Service/Method``.

    Raises:
        ConnectFailure: the call ended with an error.
    """
    reply = http.post(
        _path(method),
        content=request.SerializeToString(),
        headers={"content-type": "application/proto", "connect-protocol-version": "1", **headers},
    )
    if reply.status_code != 200:
        raise _failure(reply.status_code, reply.json())
    assert reply.headers["content-type"] == "application/proto"
    return response_type.FromString(reply.content)


def unary_json(http: httpx.Client, method: str, body: Any, headers: Mapping[str, str] = {}) -> Any:
    """One unary call in JSON; returns the parsed JSON answer.

    Raises:
        ConnectFailure: the call ended with an error.
    """
    reply = http.post(_path(method), json=body, headers={"connect-protocol-version": "1", **headers})
    if reply.status_code != 200:
        raise _failure(reply.status_code, reply.json())
    return reply.json()


def envelope(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def server_stream(
    http: httpx.Client,
    method: str,
    request: Message,
    response_type: type[M],
    headers: Mapping[str, str] = {},
    timeout: float = 30.0,
) -> Iterator[M]:
    """The messages of a server-streaming call, as they arrive.

    Raises:
        ConnectFailure: the end-of-stream message carried an error (after the messages before it).
    """
    with http.stream(
        "POST",
        _path(method),
        content=envelope(request.SerializeToString()),
        headers={"content-type": "application/connect+proto", "connect-protocol-version": "1", **headers},
        timeout=timeout,
    ) as reply:
        if reply.status_code != 200:
            reply.read()
            raise _failure(reply.status_code, reply.json())
        buffer = b""
        for chunk in reply.iter_raw():
            buffer += chunk
            while len(buffer) >= 5:
                flags, length = struct.unpack(">BI", buffer[:5])
                if len(buffer) < 5 + length:
                    break
                payload, buffer = buffer[5 : 5 + length], buffer[5 + length :]
                if flags & END_STREAM:
                    end = json.loads(payload or b"{}")
                    if "error" in end:
                        raise _failure(200, end["error"])
                    return
                yield response_type.FromString(payload)
        raise AssertionError("the stream ended without its end-of-stream message")


def _path(method: str) -> str:
    return method if method.startswith("/") else f"/tracklane.v1.{method}"
