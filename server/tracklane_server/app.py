"""The grpc.aio server: the three services, health and reflection, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from tracklane.exceptions import InvalidArgument
from tracklane.v1 import (
    artifacts_pb2,
    auth_pb2,
    auth_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    tracking_pb2,
)
from tracklane.wire.limits import MAX_MESSAGE_BYTES
from tracklane_server.artifacts import open_store as open_artifact_store
from tracklane_server.artifacts.run_roots import RunRoots
from tracklane_server.auth.authenticate import Authenticator, AuthInterceptor
from tracklane_server.auth.authorize import AuthorizationInterceptor
from tracklane_server.auth.bootstrap import bootstrap_admin
from tracklane_server.data_dir import prepare_data_dir
from tracklane_server.http.app import build_app
from tracklane_server.http.dispatch import Dispatcher, MethodTable
from tracklane_server.http.listener import HttpListener, bind_socket
from tracklane_server.http.ui import BUNDLED_UI
from tracklane_server.identity.epoch import AccessEpoch
from tracklane_server.identity.principal import parse_default_permission
from tracklane_server.interceptors import ErrorInterceptor, LimitsInterceptor
from tracklane_server.memory import limit_malloc_arenas, return_freed_memory_forever
from tracklane_server.runtime.artifact_sweeper import StaleUploadSweeper
from tracklane_server.runtime.blocking import BlockingCalls
from tracklane_server.runtime.decode_budget import DecodeBudget
from tracklane_server.runtime.points_hub import PointsFeed, PointsHub, points_feed
from tracklane_server.services.artifact_handlers import add_artifact_service
from tracklane_server.services.artifacts import ArtifactService
from tracklane_server.services.auth import AuthService
from tracklane_server.services.registry import RegistryService
from tracklane_server.services.service_handlers import add_service
from tracklane_server.services.tracking import TrackingService
from tracklane_server.settings import Settings
from tracklane_server.store.access import PermissionStore
from tracklane_server.store.metrics.ingest import MetricBatch
from tracklane_server.store.sql_store import SqlStore
from tracklane_server.store.users import UsersStore

log = logging.getLogger("tracklane_server")

UPLOAD_METHOD = "/tracklane.v1.ArtifactService/UploadArtifact"

#: Responses stay far below this (pages and watch responses are capped in points); the limit on
#: what the server accepts is the max_message_bytes setting.
MAX_SEND_MESSAGE_BYTES = MAX_MESSAGE_BYTES

#: The API's services: served over gRPC, and over Connect on the HTTP listener.
SERVICES = (
    tracking_pb2.DESCRIPTOR.services_by_name["TrackingService"],
    artifacts_pb2.DESCRIPTOR.services_by_name["ArtifactService"],
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)
SERVICE_NAMES = tuple(service.full_name for service in SERVICES)


class TracklaneServer:
    """One server process. ``start()`` binds and serves; ``stop()`` drains in-flight calls."""

    def __init__(self, settings: Settings, *, reuse_port: bool = False) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        self.port = 0
        self._executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="tracklane-store")
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._store: SqlStore | None = None
        # Wakes WatchRun calls when points commit; fed by other processes' commits too.
        self._points_hub = PointsHub()
        self._points_feed: PointsFeed | None = None
        self._upload_sweeper: asyncio.Task[None] | None = None
        self._memory_returner: asyncio.Task[None] | None = None
        self._http: HttpListener | None = None
        #: The HTTP listener's port (0 when it is off).
        self.http_port = 0

    @property
    def http_url(self) -> str:
        """``http://HOST:PORT`` of the HTTP listener, or "" when it is off."""
        return self._http.url if self._http is not None else ""

    async def start(self) -> int:
        """Opens the stores, binds and starts serving; returns the bound port.

        Raises:
            Unavailable: the database or object store cannot be reached.
            InvalidArgument: a setting is wrong.
        """
        s = self.settings
        host, port = s.host_port
        _check_port_free(host, port, reuse_port=self.reuse_port)  # before the slow part: fail fast
        http = s.http_host_port
        http_socket = None if http is None else bind_socket(*http, reuse_port=self.reuse_port)
        try:
            return await self._start(http_socket)
        except BaseException:
            if http_socket is not None and self._http is None:
                http_socket.close()
            raise

    async def _start(self, http_socket: socket.socket | None) -> int:
        s = self.settings
        host, port = s.host_port
        credentials = server_credentials(s)
        blocking = BlockingCalls(self._executor)
        prepare_data_dir(s)
        artifact_root = open_artifact_store(
            s.resolved_artifact_root,
            s3_endpoint_url=s.s3_endpoint_url,
            s3_access_key_id=s.s3_access_key_id,
            s3_secret_access_key=s.s3_secret_access_key,
            s3_region=s.s3_region,
            private=s.auth,
        )
        await blocking.call(artifact_root.ensure_ready)
        self._store = await blocking.call(
            SqlStore.open,
            s.resolved_backend_store_uri,
            s.resolved_artifact_root,
            pool_size=s.threads,
            migrate=s.auto_migrate,
        )
        self._points_hub.bind(asyncio.get_running_loop())
        self._points_feed = points_feed(self._store.engine, self._points_hub)
        if self._points_feed is not None:
            await self._points_feed.start()
        epoch = AccessEpoch()
        users = UsersStore(self._store.engine, epoch)
        # Outermost first. Errors: turns what the others raise into statuses. Auth: the caller, from
        # the metadata alone. Authorization last: it reads the request. The HTTP adapters run the
        # same chain (http/dispatch.py); gRPC's also has Limits right after auth: it reads unary
        # requests only then, within the decode budget (the HTTP listener reads its bodies itself).
        authentication: list[grpc.aio.ServerInterceptor[Any, Any]] = []
        authorization: list[grpc.aio.ServerInterceptor[Any, Any]] = []
        if s.auth:
            await blocking.call(bootstrap_admin, users, s.data_dir, s.auth_bootstrap_token)
            authentication.append(AuthInterceptor(Authenticator(users, blocking)))
            # After authentication (it sets the caller); without auth nothing is checked or filtered.
            authorization.append(
                AuthorizationInterceptor(
                    PermissionStore(self._store.engine, epoch),
                    blocking,
                    parse_default_permission(s.auth_default_permission),
                )
            )
        limits = LimitsInterceptor(
            DecodeBudget(s.max_decoding_bytes), idle_seconds={UPLOAD_METHOD: s.upload_idle_timeout_seconds}
        )
        errors = ErrorInterceptor()
        interceptors = [errors, *authentication, *authorization]
        grpc_interceptors = [errors, *authentication, limits, *authorization]
        server = grpc.aio.server(
            interceptors=grpc_interceptors,
            options=[
                ("grpc.max_receive_message_length", s.max_message_bytes),
                ("grpc.max_send_message_length", MAX_SEND_MESSAGE_BYTES),
                # Off unless workers share the port: two servers on one port by mistake must fail.
                ("grpc.so_reuseport", 1 if self.reuse_port else 0),
                # A fixed 8 MiB receive window per stream: BDP probing let one fast upload to a
                # slower store buffer over 100 MiB in the server; 8 MiB still fills a 50 ms link.
                ("grpc.http2.bdp_probe", 0),
                ("grpc.http2.lookahead_bytes", 8 * 1024 * 1024),
                *connection_options(s),
            ],
        )
        # The HTTP adapters call the same handlers through the same interceptors (http/dispatch.py).
        methods = MethodTable(server)
        run_roots = RunRoots(self._store.runs.artifact_location, s)
        tracking = TrackingService(
            self._store,
            blocking,
            self._points_hub,
            allowed_roots=run_roots.allowed,
            history_readers=max(1, s.threads // 4),
        )
        tracking.streams.per_client.limit = s.max_streams_per_client
        tracking.streams.per_user.limit = s.max_streams_per_user
        artifacts = ArtifactService(run_roots, blocking, max_artifact_bytes=s.max_artifact_bytes)
        registry = RegistryService(self._store.registry, blocking)
        # StreamMetrics batches decode straight into numpy columns (see MetricBatch.from_bytes).
        add_service(
            tracking,
            methods,  # type: ignore[arg-type]
            tracking_pb2,
            "TrackingService",
            request_deserializers={"StreamMetrics": MetricBatch.from_bytes},
        )
        add_artifact_service(artifacts, methods)  # type: ignore[arg-type]
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(registry, methods)  # type: ignore[arg-type]
        auth_pb2_grpc.add_AuthServiceServicer_to_server(
            AuthService(users, blocking, enabled=s.auth, max_token_days=s.max_token_days),
            methods,  # type: ignore[arg-type]
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in SERVICE_NAMES:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            address = join_host_port(host, port)
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError:
            self.port = 0
        if self.port == 0 and credentials is not None:  # gRPC only logs why; a bad pair is likelier
            raise OSError(
                f"cannot listen on {s.bind} with TLS: check that --tls-key-file is the private key of "
                "--tls-cert-file, and that the address is free"
            )
        if self.port == 0:
            raise OSError(f"cannot listen on {s.bind}: the address is in use or not available here")
        await server.start()
        self._server = server
        if http_socket is not None:
            await self._start_http(http_socket, Dispatcher(methods.handlers, interceptors))
        sweeper = StaleUploadSweeper(run_roots, s.artifact_multipart_max_age_seconds)
        self._upload_sweeper = asyncio.create_task(sweeper.run(blocking))
        self._memory_returner = asyncio.create_task(return_freed_memory_forever())
        log.info(
            "listening on %s (%s, auth %s); HTTP %s",
            join_host_port(host, self.port),
            "mutual TLS" if s.tls_client_ca_file else "TLS" if credentials else "plaintext",
            "on" if s.auth else "off",
            f"(web UI, Connect) on {self.http_url}" if self._http else "off",
            extra={"host": host, "port": self.port, "http_port": self.http_port},
        )
        return self.port

    async def _start_http(self, sock: socket.socket, dispatcher: Dispatcher) -> None:
        s = self.settings
        app = build_app(
            SERVICES,
            dispatcher,
            auth=s.auth,
            tls=bool(s.tls_cert_file),
            read_max_bytes=s.max_message_bytes,
            ui_root=Path(s.ui_dir) if s.ui_dir else BUNDLED_UI,
        )
        self._http = HttpListener(
            app,
            sock,
            s.http_bind.rpartition(":")[0].strip("[]"),
            tls_cert_file=s.tls_cert_file,
            tls_key_file=s.tls_key_file,
            tls_client_ca_file=s.tls_client_ca_file,
        )
        await self._http.start()
        self.http_port = self._http.port

    async def stop(self, grace: float | None = None) -> None:
        """Stops accepting calls, lets in-flight ones finish within ``grace`` seconds, then cancels."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        await self._health.enter_graceful_shutdown()
        served = self._server is not None
        for task in (self._upload_sweeper, self._memory_returner):
            if task is not None:
                task.cancel()
        self._upload_sweeper = self._memory_returner = None
        self._points_hub.close()  # watches end now, metric streams after the batch in hand
        stopping = []
        if self._http is not None:
            stopping.append(self._http.stop(grace))
            self._http = None
        if self._server is not None:
            stopping.append(self._server.stop(grace))
            self._server = None
        await asyncio.gather(*stopping)
        if self._points_feed is not None:
            await self._points_feed.stop()
            self._points_feed = None
        await _let_calls_finish(1.0)
        # Store calls still running (those of calls the client cancelled) end before the pool is
        # disposed, else their connections outlive it unclosed; a stuck one is not waited for.
        self._executor.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(self._executor.shutdown, wait=True), 5.0)
        if self._store is not None:
            self._store.close()
        if served:  # a start that failed says so once, in the CLI's error line
            log.info("stopped")

    async def wait(self) -> None:
        """Until the server terminates."""
        if self._server is not None:
            await self._server.wait_for_termination()


#: The server pings a connection silent this long, and drops it when the ping is not answered in
#: KEEPALIVE_TIMEOUT_MS: a peer that vanished (no FIN, no RST) no longer holds its calls open.
KEEPALIVE_TIME_MS = 60_000
KEEPALIVE_TIMEOUT_MS = 20_000
#: Clients' own keepalive pings (the Python client's: every 30 s during calls) are welcome this often.
CLIENT_PING_INTERVAL_MS = 10_000


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """gRPC's connection limits: handshake and idle timeouts, a maximum age, keepalive."""
    options = [
        ("grpc.server_handshake_timeout_ms", int(settings.handshake_timeout_seconds * 1000)),
        ("grpc.max_connection_idle_ms", int(settings.connection_idle_seconds * 1000)),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.http2.min_ping_interval_without_data_ms", CLIENT_PING_INTERVAL_MS),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if settings.max_connection_age_seconds:
        # No grace limit: the calls open on an old connection finish; only new ones move.
        options.append(("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)))
    return options


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files; None for plaintext.

    Raises:
        InvalidArgument: a file cannot be read.
    """
    if not settings.tls_cert_file:
        return None
    chain = _read_pem(settings.tls_cert_file, "tls_cert_file", b"CERTIFICATE-----")
    key = _read_pem(settings.tls_key_file, "tls_key_file", b"PRIVATE KEY-----")
    client_ca = (
        _read_pem(settings.tls_client_ca_file, "tls_client_ca_file", b"CERTIFICATE-----")
        if settings.tls_client_ca_file
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _read_pem(path: str, field: str, kind: bytes) -> bytes:
    """The file's bytes, which must hold a PEM block of ``kind``; never echoes the contents."""
    flag = f"--{field.replace('_', '-')}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{flag}: cannot read {path}: {exc.strerror}", field=field) from None
    if b"-----BEGIN " not in data or kind not in data:
        what = kind.decode().strip("-").lower()
        raise InvalidArgument(f"{flag}: {path} holds no PEM {what}", field=field)
    return data


async def _let_calls_finish(seconds: float) -> None:
    """Lets the tasks of calls that just ended finish their last step: grpc.aio may still hold
    one for a call whose status is sent, and the loop closing would cancel it with a traceback."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if others:
        await asyncio.wait(others, timeout=seconds)


def join_host_port(host: str, port: int) -> str:
    """``HOST:PORT``, an IPv6 address in brackets (``[::1]:50051``) as gRPC and URIs want it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_port_free(host: str, port: int, *, reuse_port: bool) -> None:
    """OSError with one clear line when the address cannot be bound (gRPC would only log it)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gRPC binds: connections of a killed server left in TIME_WAIT must not block a restart,
        # while a socket still listening there does (Linux refuses SO_REUSEADDR over a listener).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {join_host_port(host, port)}: {exc.strerror or exc}") from None


async def serve(settings: Settings, *, reuse_port: bool = False) -> None:
    """Runs one server until SIGTERM or SIGINT, then stops gracefully."""
    limit_malloc_arenas()  # before the store threads exist: keeps RSS flat under artifact load
    server = TracklaneServer(settings, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
        log.info("shutting down; in-flight calls have %.1f s", settings.shutdown_grace_seconds)
    finally:
        await server.stop()
