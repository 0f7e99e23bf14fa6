"""Names of the call metadata (gRPC headers) client and server exchange."""

from __future__ import annotations

__all__ = ["AUTHORIZATION_HEADER", "CLIENT_ID_HEADER"]

#: ``Bearer <token>`` (or ``Basic`` with user name and token) when the server runs with auth.
AUTHORIZATION_HEADER = "authorization"
#: Metadata naming the client process, whose streams share the server's max_streams_per_client.
CLIENT_ID_HEADER = "tracklane-client-id"
