"""MLflow's scoring protocol over HTTP: ``POST /invocations``, ``/ping``, ``/health``, ``/version``,
and Prometheus' ``/metrics``.

Error bodies are MLflow's (``{"error_code": ..., "message": ...}``); a request whose body is larger
than the limit gets 413 before it is read whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracklane.serving.payload import ScoringError
from tracklane.serving.scoring import ServedModel

__all__ = ["build_app"]

_JSON = "application/json"


def build_app(model: ServedModel, max_request_bytes: int, ready: Callable[[], bool]) -> Starlette:
    """The ASGI app scoring ``model``.

    Args:
        model: The loaded model.
        max_request_bytes: Larger bodies are refused with 413.
        ready: False while the worker drains (``/ping`` then answers 503, so balancers move on).
    """
    import tracklane

    version = tracklane.__version__.encode()

    async def ping(request: Request) -> Response:
        return Response(b"\n", 200 if ready() else 503, media_type=_JSON)

    async def version_(request: Request) -> Response:
        return Response(version, media_type=_JSON)

    async def metrics(request: Request) -> Response:
        return Response(model.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def invocations(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _read_body(request, max_request_bytes)
            content = await model.invocations(body, request.headers.get("content-type"))
        except ScoringError as exc:
            model.metrics.observe(
                "invocations", str(exc.status), time.perf_counter() - started, exc.error_code
            )
            if exc.status == 415:
                return Response(exc.message, 415, media_type="text/plain")
            return Response(exc.to_json(), exc.status, media_type=_JSON)
        model.metrics.observe("invocations", "200", time.perf_counter() - started)
        return Response(content, media_type=_JSON)

    return Starlette(
        routes=[
            Route("/ping", ping, methods=["GET"]),
            Route("/health", ping, methods=["GET"]),
            Route("/version", version_, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ]
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ScoringError:
    return ScoringError(
        f"Request body is larger than the server's limit of {limit} bytes (--max-request-size)",
        status=413,
        error_code="RESOURCE_LIMIT_EXCEEDED",
    )
