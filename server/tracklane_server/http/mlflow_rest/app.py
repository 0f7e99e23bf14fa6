"""MLflow's REST API on the HTTP listener: ``/api/<v>/mlflow...``, ``/ajax-api/<v>/mlflow...``.

The route table is MLflow's (:mod:`schema`, from its protos); each route's handler is registered
by MLflow RPC name in :mod:`tracking`, :mod:`registry`, :mod:`artifacts` and
:mod:`logged_models`. A request is decoded as MLflow decodes it (:mod:`codec`), translated into
tracklane.v1 calls made through the gRPC server's interceptors (:mod:`calls`), and answered in
MLflow's JSON; every failure leaves through :mod:`errors`. Routes MLflow has that Tracklane does
not serve (GenAI traces, prompts, scorers, workspaces...) answer NOT_IMPLEMENTED (501), as
MLflow answers a method its store lacks.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tracklane.exceptions import TracklaneError
from tracklane_server.http.call_context import HttpAbort, Metadata
from tracklane_server.http.dispatch import Dispatcher
from tracklane_server.http.mlflow_rest import artifacts, logged_models, registry, tracking  # noqa: F401  (they register)
from tracklane_server.http.mlflow_rest.calls import Call, handlers, raw_handlers
from tracklane_server.http.mlflow_rest.codec import decode, json_response, query_json
from tracklane_server.http.mlflow_rest.errors import MlflowError, error_response, from_abort, from_tracklane
from tracklane_server.http.mlflow_rest.schema import MLFLOW_VERSION, Routes
from tracklane_server.http.session import Sessions

__all__ = ["MlflowRest"]

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
#: What MLflow 3's client asks the server before choosing how to move artifacts.
_SERVER_INFO = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
}


class MlflowRest:
    """The adapter; ``routes()`` go before the UI's catch-all."""

    def __init__(self, dispatcher: Dispatcher, sessions: Sessions) -> None:
        self._dispatcher = dispatcher
        self._sessions = sessions
        self._routes = Routes()
        known = handlers()
        raw = raw_handlers()
        self._handlers = {}
        self._raw = {}
        for route in self._routes:
            key = f"{route.service.rsplit('.', 1)[-1]}.{route.rpc}"
            if key in raw:
                self._raw[key] = raw[key]
            elif key in known:
                self._handlers[key] = known[key]

    def routes(self) -> list[Route]:
        return [
            Route("/api/3.0/mlflow/server-info", self._server_info, methods=["GET"]),
            Route("/ajax-api/3.0/mlflow/server-info", self._server_info, methods=["GET"]),
            Route("/version", self._version, methods=["GET"]),
            Route("/api/{path:path}", self.handle, methods=_METHODS),
            Route("/ajax-api/{path:path}", self.handle, methods=_METHODS),
        ]

    async def _server_info(self, _request: Request) -> Response:
        return json_response(_SERVER_INFO)

    async def _version(self, _request: Request) -> Response:
        """The MLflow API version served: the ``mlflow`` client gates some calls on it."""
        return PlainTextResponse(MLFLOW_VERSION)

    def _credentials(self, request: Request, metadata: Metadata) -> Metadata:
        return self._sessions.call_metadata(request.headers, request.method, metadata)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        try:
            found = self._routes.match(request.method, path)
            if found is None:
                allowed = self._routes.allows(path)
                if allowed:
                    raise MlflowError(
                        "BAD_REQUEST", f"{request.method} is not allowed on {path}: use {', '.join(allowed)}"
                    )
                raise MlflowError("ENDPOINT_NOT_FOUND", f"No endpoint at {request.method} {path}")
            route, params = found
            key = f"{route.service.rsplit('.', 1)[-1]}.{route.rpc}"
            call = Call.of(self._dispatcher, request, self._credentials)
            if (raw := self._raw.get(key)) is not None:
                response: Response = await raw(call, request, params)
                return response
            handler = self._handlers.get(key)
            if handler is None:
                raise MlflowError(
                    "NOT_IMPLEMENTED", f"{route.rpc} ({route.method} {route.path}) is not served by Tracklane"
                )
            if request.method == "GET" and request.query_params:
                body: Any = query_json(route.request, request.query_params)
            else:
                body = await _json_body(request)
            message = decode(body, route.request, params)
            return json_response(await handler(call, message))
        except MlflowError as exc:
            return error_response(exc)
        except HttpAbort as abort:
            return error_response(from_abort(abort))
        except TracklaneError as exc:
            return error_response(from_tracklane(exc))


async def _json_body(request: Request) -> Any:
    """The body's JSON; an empty or unreadable body is ``{}`` (MLflow reads it leniently), and a
    JSON string holding JSON (older clients) is read twice, as MLflow does."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
        if isinstance(body, str):
            body = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return body
