"""``GET /artifacts/RUN_ID/PATH``: a run's file over plain HTTP, with Range, for the browser.

An ``<img>``, a preview that reads the first megabyte (``Range: bytes=0-1048575``) or a 10 GiB
download saved to disk: each is one ``DownloadArtifact`` call through the dispatcher, so the same
authentication (the session cookie; a GET needs no CSRF token), permission (READ on the run's
experiment) and errors as over gRPC, and the bytes stream with back-pressure, never whole in memory.
One range per request (``bytes=A-B``, ``bytes=A-``, ``bytes=-N``); several ranges get the whole
file, as RFC 9110 allows. The response carries its own sandboxing policy: an HTML or SVG artifact
opened from here runs no script and gets no access to this origin.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

from connectrpc._protocol import ConnectWireError  # the Connect code -> HTTP status table
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tracklane.exceptions import TracklaneError
from tracklane.v1 import artifacts_pb2
from tracklane_server.http.call_context import HttpAbort, HttpCallContext, peer_of
from tracklane_server.http.connect import connect_error, error_of
from tracklane_server.http.dispatch import Dispatcher
from tracklane_server.http.session import Sessions

__all__ = ["ARTIFACT_POLICY", "ArtifactDownloads"]

_DOWNLOAD = "/tracklane.v1.ArtifactService/DownloadArtifact"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
#: Overrides the page's policy: nothing in the file may run, load from elsewhere, or frame us.
ARTIFACT_POLICY = (
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
)
#: Served with their own type (images, media, PDF, text); anything else as bytes.
_INLINE = ("image/", "audio/", "video/", "text/", "application/pdf", "application/json")


class ArtifactDownloads:
    """The download route; needs the dispatcher (for the call) and the sessions (for the caller)."""

    def __init__(self, dispatcher: Dispatcher, sessions: Sessions) -> None:
        self._dispatcher = dispatcher
        self._sessions = sessions

    def routes(self) -> list[Route]:
        return [Route("/artifacts/{run_id}/{path:path}", self._download, methods=["GET", "HEAD"])]

    async def _download(self, request: Request) -> Response:
        run_id, path = request.path_params["run_id"], request.path_params["path"]
        wanted = _parse_range(request.headers.get("range", ""))
        try:
            offset, last = 0, None
            if wanted is not None:
                first_byte, last = wanted
                if first_byte is None:  # the last N bytes: the size comes first
                    size = (await self._info(request, run_id, path)).size
                    first_byte, last = max(0, size - (last or 0)), None
                offset = first_byte
            length = 1 if request.method == "HEAD" else 0 if last is None else last - offset + 1
            calls = self._dispatcher.server_stream(
                _DOWNLOAD,
                artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path, offset=offset, length=length),
                self._context(request),
            )
            try:
                first = artifacts_pb2.DownloadArtifactResponse.FromString(await anext(calls))
            except HttpAbort:
                if offset > 0:  # a range past the end: the store refuses the offset; 416 with the size
                    size = (await self._info(request, run_id, path)).size
                    if offset >= size:
                        return _unsatisfiable(size)
                raise
        except HttpAbort as abort:
            return _error_response(connect_error(abort))
        except TracklaneError as exc:
            return _error_response(error_of(exc))
        info = first.file
        if wanted is not None and offset >= info.size:
            await calls.aclose()
            return _unsatisfiable(info.size)
        headers = _headers(info, request)
        status, size = 200, info.size
        if wanted is not None:
            end = info.size - 1 if last is None else min(last, info.size - 1)
            status, size = 206, end - offset + 1
            headers["content-range"] = f"bytes {offset}-{end}/{info.size}"
        headers["content-length"] = str(size)
        unchanged = (
            wanted is None and "etag" in headers and request.headers.get("if-none-match") == headers["etag"]
        )
        if request.method == "HEAD" or unchanged:
            await calls.aclose()
            return Response(status_code=304 if unchanged else status, headers=headers)
        return StreamingResponse(_body(first.chunk, calls), status_code=status, headers=headers)

    def _context(self, request: Request) -> HttpCallContext:
        metadata = tuple((k, v) for k, v in request.headers.items() if k not in {"cookie", "host"})
        client = request.client
        return HttpCallContext(
            self._sessions.call_metadata(request.headers, request.method, metadata),
            peer_of((client.host, client.port) if client else None),
        )

    async def _info(self, request: Request, run_id: str, path: str) -> artifacts_pb2.FileInfo:
        """The file's description (size, SHA-256), by a one-byte read."""
        calls = self._dispatcher.server_stream(
            _DOWNLOAD,
            artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path, length=1),
            self._context(request),
        )
        try:
            return artifacts_pb2.DownloadArtifactResponse.FromString(await anext(calls)).file
        finally:
            await calls.aclose()


def _parse_range(header: str) -> tuple[int | None, int | None] | None:
    """(first, last) of a single byte range, (None, N) for the last N bytes; None for none or
    several (the whole file is sent)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or not any(match.groups()):
        return None
    first, last = (int(g) if g else None for g in match.groups())
    if first is not None and last is not None and last < first:
        return None
    return first, last


def _headers(info: artifacts_pb2.FileInfo, request: Request) -> dict[str, str]:
    name = info.path.rsplit("/", 1)[-1]
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if not media_type.startswith(_INLINE) and not media_type.endswith(("+xml", "/html")):
        media_type = "application/octet-stream"
    if media_type.startswith("text/") or media_type == "application/json":
        media_type += "; charset=utf-8"
    disposition = "attachment" if request.query_params.get("download") else "inline"
    headers = {
        "content-type": media_type,
        "content-disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
        "accept-ranges": "bytes",
        "cache-control": "private, no-cache",
        "content-security-policy": ARTIFACT_POLICY,
        "cross-origin-resource-policy": "same-origin",
    }
    if info.sha256:
        headers["etag"] = f'"{info.sha256}"'
    return headers


async def _body(first: bytes, calls: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for message in calls:
            yield artifacts_pb2.DownloadArtifactResponse.FromString(message).chunk
    finally:
        await calls.aclose()


def _unsatisfiable(size: int) -> Response:
    return Response(status_code=416, headers={"content-range": f"bytes */{size}"})


def _error_response(error: Any) -> Response:
    wire = ConnectWireError.from_exception(error)
    return Response(
        wire.to_json_bytes(), status_code=wire.to_http_status().code, media_type="application/json"
    )
