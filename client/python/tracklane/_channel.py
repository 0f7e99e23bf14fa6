"""Tracking URI -> gRPC channel: target, TLS, message limits, keepalive and the retry policy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from tracklane.exceptions import InvalidArgument
from tracklane.v1 import artifacts_pb2, registry_pb2, tracking_pb2

DEFAULT_TRACKING_URI = "grpc://localhost:50051"
TRACKING_URI_ENV = "TRACKLANE_TRACKING_URI"
CA_FILE_ENV = "TRACKLANE_TRACKING_CA_FILE"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Reads are safe to retry on UNAVAILABLE; writes are not (a metric batch would be stored twice).
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
                if method.name.startswith(_RETRYABLE_PREFIXES) and not method.server_streaming:
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


def make_channel(uri: str, *, ca_file: str | None = None) -> grpc.Channel:
    """A channel for a tracking URI; grpcs:// trusts system roots or $TRACKLANE_TRACKING_CA_FILE."""
    target, tls = parse_target(uri)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", _SERVICE_CONFIG),
    ]
    if not tls:
        return grpc.insecure_channel(target, options=options)
    ca_file = ca_file or os.environ.get(CA_FILE_ENV)
    roots = Path(ca_file).read_bytes() if ca_file else None
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options=options)
