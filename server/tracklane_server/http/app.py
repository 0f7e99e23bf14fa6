"""The ASGI app of the HTTP listener: Connect for the services, sign-in, downloads, the UI bundle.

Requests to ``/tracklane.v1.*`` go to the Connect app (every path there is ``/SERVICE/METHOD``);
everything else to a Starlette router (sign-in, downloads, MLflow's REST API under ``/api`` and
``/ajax-api``) whose last route is the UI (client routes fall back to its
``index.html``). Security headers wrap it all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import ServiceDescriptor
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from tracklane_server.http.artifacts import ArtifactDownloads
from tracklane_server.http.connect import ConnectApp, headers_metadata
from tracklane_server.http.dispatch import Dispatcher
from tracklane_server.http.headers import SecurityHeaders
from tracklane_server.http.mlflow_rest.app import MlflowRest
from tracklane_server.http.session import Sessions
from tracklane_server.http.ui import UiFiles

__all__ = ["CONNECT_PREFIX", "build_app"]

CONNECT_PREFIX = "/tracklane.v1."


def build_app(
    services: Sequence[ServiceDescriptor],
    dispatcher: Dispatcher,
    *,
    auth: bool,
    tls: bool,
    read_max_bytes: int,
    ui_root: Path,
    routes: Sequence[BaseRoute] = (),
) -> Any:
    """The listener's ASGI app.

    Args:
        services: The services served over Connect.
        dispatcher: Calls methods through the gRPC server's interceptors.
        auth: Whether the server requires tokens (then sign-in and CSRF checks apply).
        tls: Whether the listener serves HTTPS (Secure cookies, HSTS).
        read_max_bytes: Largest request message accepted.
        ui_root: Folder of the built web UI.
        routes: Further HTTP routes (before the UI's catch-all).
    """
    sessions = Sessions(dispatcher, auth=auth, tls=tls)
    connect = ConnectApp(
        services,
        dispatcher,
        lambda ctx: sessions.call_metadata(ctx.request_headers, ctx.http_method, headers_metadata(ctx)),
        read_max_bytes=read_max_bytes,
    )
    ui = UiFiles(ui_root)
    downloads = ArtifactDownloads(dispatcher, sessions)
    site = Starlette(
        routes=[
            *sessions.routes(),
            *downloads.routes(),
            *MlflowRest(dispatcher, sessions).routes(),
            *routes,
            Route("/{path:path}", ui.respond, methods=["GET", "HEAD"]),
        ]
    )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CONNECT_PREFIX):
            await connect(scope, receive, send)
        else:
            await site(scope, receive, send)

    return SecurityHeaders(app, tls=tls)
