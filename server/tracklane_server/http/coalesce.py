"""HTTP responses written to the socket in one piece: status line, headers and a small body together.

uvicorn's h11 protocol writes the status line and headers, then the body, then the end of the
message, each with its own ``transport.write``; with TCP_NODELAY (asyncio's default) each becomes
its own segment, so a 300-byte MLflow answer took two or three packets, each a wake-up of the
client. The ASGI app sends a whole small response within one step of the event loop, so the
transport here gathers the writes of that step and hands them to the socket as one at the end of
it (``call_soon``). A large write (a download chunk) goes out at once, after what is pending, so
big bodies are not copied and back-pressure works as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["CoalescingH11Protocol"]

_DIRECT = 64 * 1024  # writes this large skip the gathering: they are a segment train anyway


class _CoalescingTransport:
    """Wraps an asyncio transport: writes made in one loop step reach the socket as one."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        if len(data) >= _DIRECT:
            self.flush()
            self._transport.write(data)
            return
        self._pending.append(data)
        self._size += len(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            self._size = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's
        return getattr(self._transport, name)


class CoalescingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol over a :class:`_CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = _CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)  # type: ignore[arg-type]
