"""Says plainly when no server answers at the tracking URI, instead of gRPC's transport errors.

Before a command's first call, one TCP connect to the server's address (a loopback connect costs
microseconds): refused or unresolvable fails at once with what to do, where the channel would
otherwise retry for seconds and then report ``failed to connect to all addresses``. Anything else
(a timeout, a proxy) is left to gRPC and its own message.
"""

from __future__ import annotations

import socket

from tracklane._channel import parse_target, resolve_tracking_uri
from tracklane.exceptions import Unavailable

__all__ = ["check_server", "explain_unavailable"]

_PROBE_TIMEOUT_S = 3.0
# What gRPC says when nothing listens or the name does not resolve (core's wording, all versions seen).
_NOT_THERE = ("connection refused", "failed to connect to all addresses", "dns resolution failed")
_NO_NAME = ("domain name not found", "errors resolving", "name or service not known")


_ADVICE = (
    "start one with `tracklane server` (it serves on 127.0.0.1:50051), or point --tracking-uri "
    "or TRACKLANE_TRACKING_URI at yours"
)


def check_server(tracking_uri: str | None) -> None:
    """Raises Unavailable, saying how to start a server, when nothing listens at the tracking URI."""
    uri = resolve_tracking_uri(tracking_uri)
    target, _tls = parse_target(uri)  # InvalidArgument for a malformed URI, before any connect
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=_PROBE_TIMEOUT_S):
            return
    except ConnectionRefusedError:
        raise Unavailable(f"no Tracklane server at {uri} (connection refused): {_ADVICE}") from None
    except socket.gaierror:
        raise Unavailable(f"cannot resolve the host of the tracking URI {uri}: {_ADVICE}") from None
    except OSError:
        return  # unreachable in another way (filtered, slow): gRPC reports it in its own words


def explain_unavailable(error: Unavailable, tracking_uri: str | None) -> Unavailable:
    """The same error, reworded when it means the server went away (e.g. it stopped mid-command)."""
    text = error.message.lower()
    if not any(marker in text for marker in _NOT_THERE + _NO_NAME):
        return error
    uri = resolve_tracking_uri(tracking_uri)
    return Unavailable(f"the Tracklane server at {uri} stopped answering ({error.message}): {_ADVICE}")
