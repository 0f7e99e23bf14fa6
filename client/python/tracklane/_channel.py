"""Tracking URI -> gRPC channel: target, TLS (and client certificates), the API token, message limits,
keepalive and the retry policy."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from tracklane.exceptions import InvalidArgument
from tracklane.v1 import artifacts_pb2, registry_pb2, tracking_pb2
from tracklane.wire.headers import AUTHORIZATION_HEADER
from tracklane.wire.limits import MAX_MESSAGE_BYTES

DEFAULT_TRACKING_URI = "grpc://localhost:50051"
TRACKING_URI_ENV = "TRACKLANE_TRACKING_URI"
CA_FILE_ENV = "TRACKLANE_TRACKING_CA_FILE"
#: The API token sent as ``authorization: Bearer <token>`` when the server runs with auth.
TOKEN_ENV = "TRACKLANE_TRACKING_TOKEN"
#: PEM client certificate and key, for servers that require them (mutual TLS).
CLIENT_CERT_FILE_ENV = "TRACKLANE_TRACKING_CLIENT_CERT_FILE"
CLIENT_KEY_FILE_ENV = "TRACKLANE_TRACKING_CLIENT_KEY_FILE"

# Safe to retry on UNAVAILABLE: reads, and writes that carry a `request_id` (the client sends a fresh
# one per call, so a retry of a write that did commit gets the first result back). Other writes are
# not (a metric batch would be stored twice).
_RETRYABLE_PREFIXES = ("Get", "Search", "List", "BatchGet")


def resolve_tracking_uri(uri: str | None) -> str:
    """The argument, else $TRACKLANE_TRACKING_URI, else grpc://localhost:50051."""
    return uri or os.environ.get(TRACKING_URI_ENV) or DEFAULT_TRACKING_URI


def parse_target(uri: str) -> tuple[str, bool]:
    """``grpc://host:port`` -> (``host:port``, tls=False); ``grpcs://`` -> tls=True; bare host:port ok."""
    if "://" not in uri:
        uri = f"grpc://{uri}"
    parts = urlsplit(uri)
    if parts.scheme not in ("grpc", "grpcs") or not parts.hostname:
        raise InvalidArgument(
            f"tracking URI {uri!r}: expected grpc://HOST:PORT or grpcs://HOST:PORT", field="tracking_uri"
        )
    try:
        port = parts.port or 50051
    except ValueError:
        raise InvalidArgument(
            f"tracking URI {uri!r}: the port is not a number", field="tracking_uri"
        ) from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", parts.scheme == "grpcs"


def _service_config() -> str:
    names = []
    for file in (tracking_pb2, artifacts_pb2, registry_pb2):
        for service in file.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                read = method.name.startswith(_RETRYABLE_PREFIXES)
                idempotent = "request_id" in method.input_type.fields_by_name
                if (read or idempotent) and not method.server_streaming:
                    names.append({"service": service.full_name, "method": method.name})
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": names,
                    "retryPolicy": {
                        "maxAttempts": 4,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


_SERVICE_CONFIG = _service_config()


def make_channel(
    uri: str,
    *,
    ca_file: str | None = None,
    token: str | None = None,
    client_cert_file: str | None = None,
    client_key_file: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel for a tracking URI, with the token on every call (unary and streaming).

    Args:
        uri: ``grpc://`` (plaintext) or ``grpcs://`` (TLS) ``HOST:PORT``.
        ca_file: PEM roots to trust; default ``$TRACKLANE_TRACKING_CA_FILE``, else the system's.
        token: API token; default ``$TRACKLANE_TRACKING_TOKEN``, else none.
        client_cert_file, client_key_file: PEM client certificate and key for mutual TLS; default
            ``$TRACKLANE_TRACKING_CLIENT_CERT_FILE`` / ``_KEY_FILE``.
        options: gRPC channel options that replace or extend the defaults (keepalive, backoff...).

    Raises:
        InvalidArgument: a bad URI or token, a file that cannot be read, a certificate without key.
    """
    target, tls = parse_target(uri)
    merged = dict(
        [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", _SERVICE_CONFIG),
            # A pool per channel, not gRPC's global one: after fork() the child's channels must not
            # reuse connections (subchannels) that belong to the parent.
            ("grpc.use_local_subchannel_pool", 1),
        ]
    )
    merged.update(options)
    channel_options = list(merged.items())
    token = resolve_token(token)
    if tls:
        channel = grpc.secure_channel(
            target, _tls_credentials(ca_file, client_cert_file, client_key_file), options=channel_options
        )
    else:
        channel = grpc.insecure_channel(target, options=channel_options)
    if token:
        # An interceptor rather than call credentials: those are refused on plaintext channels, and a
        # token on loopback without TLS is a legitimate set-up (the server behind a local proxy).
        return grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def resolve_token(token: str | None) -> str:
    """The argument, else ``$TRACKLANE_TRACKING_TOKEN``, else empty; checked, never echoed.

    Raises:
        InvalidArgument: the token has characters metadata cannot carry.
    """
    token = (token or os.environ.get(TOKEN_ENV) or "").strip()
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise InvalidArgument(
            f"the API token (token= or ${TOKEN_ENV}) must be printable ASCII without spaces", field="token"
        )
    return token


def _tls_credentials(
    ca_file: str | None, client_cert_file: str | None, client_key_file: str | None
) -> grpc.ChannelCredentials:
    ca_file = ca_file or os.environ.get(CA_FILE_ENV)
    cert_file = client_cert_file or os.environ.get(CLIENT_CERT_FILE_ENV)
    key_file = client_key_file or os.environ.get(CLIENT_KEY_FILE_ENV)
    if bool(cert_file) != bool(key_file):
        raise InvalidArgument(
            f"a client certificate needs its key: set ${CLIENT_CERT_FILE_ENV} and ${CLIENT_KEY_FILE_ENV}",
            field="client_key_file" if cert_file else "client_cert_file",
        )
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "ca_file") if ca_file else None,
        private_key=_read(key_file, "client_key_file") if key_file else None,
        certificate_chain=_read(cert_file, "client_cert_file") if cert_file else None,
    )


def _read(path: str, field: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"{field}: cannot read {path}: {exc.strerror}", field=field) from None


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Adds ``authorization: Bearer <token>`` to every call's metadata."""

    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION_HEADER, f"Bearer {token}")

    def __repr__(self) -> str:
        return "_BearerToken(<hidden>)"

    def _details(self, details: Any) -> Any:
        metadata = [m for m in details.metadata or () if m[0] != AUTHORIZATION_HEADER]
        return _CallDetails(
            details.method,
            details.timeout,
            (*metadata, self._header),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Iterable[Any]
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Iterable[Any]
    ) -> Any:
        return continuation(self._details(details), requests)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self,
        method: str,
        timeout: float | None,
        metadata: tuple[tuple[str, str | bytes], ...],
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression
