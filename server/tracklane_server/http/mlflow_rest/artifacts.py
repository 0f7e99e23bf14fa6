"""MLflow's proxied artifact service (``/api/2.0/mlflow-artifacts/...``) over ArtifactService.

MLflow addresses files by a path under its artifact root; the locations this adapter shows
(:mod:`present`) make that path ``<experiment_id>/<run_id>/artifacts/<path>``, which names the run
and the file in it. An upload is one UploadArtifact stream fed from the request body as it
arrives (in 2 MiB chunks, never whole in memory); a download is one DownloadArtifact stream
written to the response as it comes. Both carry the request's credentials, so the permission
checks are ArtifactService's (EDIT on the run to write, READ to read).

Multipart uploads (``mpu/create|complete|abort``) need the store to accept parts of the sizes the
client chose, which Tracklane's presigned uploads (parts it sizes itself) do not offer: they are
answered NOT_IMPLEMENTED, as MLflow answers for a store without multipart support, and the
``mlflow`` client (which only uses them when the server's ``server-info`` offers them) streams
the file in one PUT instead.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Mapping
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tracklane.v1 import artifacts_pb2
from tracklane.wire.artifacts import chunk_message_of, parse_download_message
from tracklane_server.http.mlflow_rest.calls import Call, Msg
from tracklane_server.http.mlflow_rest.calls import rpc as _rpc
from tracklane_server.http.mlflow_rest.codec import json_response
from tracklane_server.http.mlflow_rest.errors import MlflowError, invalid, not_found
from tracklane_server.services.artifacts import MAX_CHUNK_BYTES

__all__ = ["proxy_path"]

_A = "/tracklane.v1.ArtifactService/"
_CHUNK = 1024 * 1024
rpc = partial(_rpc, service="MlflowArtifactsService")


def proxy_path(path: str) -> tuple[str, str]:
    """(run_id, path in the run) of ``<experiment_id>/<run_id>/artifacts/<path>``.

    Raises:
        MlflowError: any other path (RESOURCE_DOES_NOT_EXIST), or one that climbs (``..``).
    """
    parts = path.strip("/").split("/")
    if ".." in parts or any("\x00" in p for p in parts):
        raise invalid(f"Invalid path: {path!r}")
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[1]:
        raise not_found(
            f"No artifact at {path!r}: this server's artifact paths read "
            "<experiment_id>/<run_id>/artifacts/<path>"
        )
    return parts[1], "/".join(parts[3:])


@rpc("downloadArtifact", raw=True)
async def download_artifact(call: Call, request: Request, params: Mapping[str, str]) -> Response:
    run_id, path = proxy_path(params["artifact_path"])
    stream = call.server_stream(
        _A + "DownloadArtifact", artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path)
    )
    first = await anext(stream)  # errors (no such file, no permission) surface before any byte is sent
    info, chunk = parse_download_message(first)
    size = info.size if info is not None else None
    media = mimetypes.guess_type(path.rsplit("/", 1)[-1])[0] or "application/octet-stream"

    async def body() -> AsyncIterator[bytes | memoryview]:
        try:
            if chunk:
                yield chunk
            async for message in stream:
                yield parse_download_message(message)[1]
        finally:
            await stream.aclose()

    headers = {"content-length": str(size)} if size is not None else {}
    return StreamingResponse(body(), media_type=media, headers=headers)


@rpc("uploadArtifact", raw=True)
async def upload_artifact(call: Call, request: Request, params: Mapping[str, str]) -> Response:
    run_id, path = proxy_path(params["artifact_path"])
    if not path:
        raise invalid("Invalid path: an upload names a file under <experiment_id>/<run_id>/artifacts/")
    header = artifacts_pb2.UploadHeader(run_id=run_id, path=path)
    if (length := request.headers.get("content-length", "")).isdigit():
        header.size = int(length)

    async def messages() -> AsyncIterator[bytes]:
        yield artifacts_pb2.UploadArtifactRequest(header=header).SerializeToString()
        # The body arrives in ~64 KiB pieces: each chunk message is joined from them in one copy.
        pieces: list[bytes] = []
        size = 0
        async for piece in request.stream():
            if size + len(piece) > MAX_CHUNK_BYTES and pieces:
                yield chunk_message_of(pieces, size)
                pieces, size = [], 0
            pieces.append(piece)
            size += len(piece)
            if size >= _CHUNK:
                yield chunk_message_of(pieces, size)
                pieces, size = [], 0
        if pieces:
            yield chunk_message_of(pieces, size)

    await call.client_stream(_A + "UploadArtifact", messages())
    return json_response({})


@rpc("deleteArtifact", raw=True)
async def delete_artifact(call: Call, request: Request, params: Mapping[str, str]) -> Response:
    run_id, path = proxy_path(params["artifact_path"])
    await call.unary(_A + "DeleteArtifact", artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path=path))
    return json_response({})


@rpc("listArtifacts")
async def list_proxied(call: Call, m: Msg) -> dict[str, Any]:
    raw = m.path.strip("/")
    parts = raw.split("/") if raw else []
    if len(parts) == 2:  # a run's folder holds its artifacts root
        return {"files": [{"path": "artifacts", "is_dir": True}]}
    if len(parts) < 3:
        return {}
    run_id, path = proxy_path(raw)
    files: list[dict[str, Any]] = []
    request = artifacts_pb2.ListArtifactsRequest(run_id=run_id, path=path, page_size=10_000)
    while True:
        reply = await call.unary(_A + "ListArtifacts", request)
        for f in reply.files:
            entry: dict[str, Any] = {"path": f.path.rsplit("/", 1)[-1], "is_dir": f.is_dir}
            if not f.is_dir:
                entry["file_size"] = f.size
            files.append(entry)
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    return {"files": files} if files else {}


def _no_multipart(_call: Call, _m: Msg) -> Any:
    raise MlflowError(
        "NOT_IMPLEMENTED", "Multipart upload is not supported for the current artifact repository"
    )


for _name in ("createMultipartUpload", "completeMultipartUpload", "abortMultipartUpload"):
    rpc(_name)(_no_multipart)
