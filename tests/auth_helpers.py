"""A real server with auth enabled, and helpers to make users with tokens and clients for them.

    def test_x(auth_server: AuthServer) -> None:
        alice = auth_server.create_user("alice")            # a fresh user "alice-<random>" + token
        with alice.client() as client:                       # tracklane.Client with alice's token
            client.create_experiment("e")
        auth_server.admin.auth_stub().ListUsers(...)         # raw AuthService stub as the admin

The ``auth_server`` fixture (tests/servers/in_process.py) gives one such server per backend
(SQLite + folder, PostgreSQL + MinIO) per session, on its own database, apart from the
no-auth ``tracking_server``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

import tracklane
from tracklane import _channel
from tracklane.testing import LocalServer
from tracklane.v1 import auth_pb2, auth_pb2_grpc

__all__ = ["BOOTSTRAP_TOKEN", "AuthServer", "AuthUser", "start_auth_server"]

#: The admin's token on every test server (supplied through the bootstrap setting).
BOOTSTRAP_TOKEN = "tlk_test-bootstrap-token-0123456789abcdefghij"


@dataclass
class AuthUser:
    """A user of an AuthServer with one token."""

    server: AuthServer
    name: str
    token: str
    is_admin: bool = False

    def client(self) -> tracklane.Client:
        """A tracklane.Client sending this user's token (closed with the server's helpers too)."""
        return self.server.client(self.token)

    def auth_stub(self) -> auth_pb2_grpc.AuthServiceStub:
        """A raw AuthService stub sending this user's token."""
        return auth_pb2_grpc.AuthServiceStub(self.server.channel(self.token))

    def channel(self) -> grpc.Channel:
        """A raw channel sending this user's token, for any service's stub."""
        return self.server.channel(self.token)


@dataclass
class AuthServer:
    """A running server with auth; ``admin`` holds the bootstrap token."""

    local: LocalServer
    _closables: list[Any] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return self.local.uri

    @property
    def admin(self) -> AuthUser:
        return AuthUser(self, "admin", BOOTSTRAP_TOKEN, is_admin=True)

    def client(self, token: str | None) -> tracklane.Client:
        client = tracklane.Client(self.uri, token=token)
        self._closables.append(client)
        return client

    def channel(self, token: str | None) -> grpc.Channel:
        channel = _channel.make_channel(self.uri, token=token)
        self._closables.append(channel)
        return channel

    def create_user(self, prefix: str = "user", *, is_admin: bool = False) -> AuthUser:
        """Creates ``<prefix>-<random>`` (admin or not) with one token, as the admin."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        stub = self.admin.auth_stub()
        stub.CreateUser(auth_pb2.CreateUserRequest(user=auth_pb2.User(name=name, is_admin=is_admin)))
        return AuthUser(self, name, self.create_token(name), is_admin=is_admin)

    def create_token(self, user_name: str, name: str = "test") -> str:
        """A new token (its secret) for an existing user, made by the admin."""
        response = self.admin.auth_stub().CreateToken(
            auth_pb2.CreateTokenRequest(user_name=user_name, name=name)
        )
        return str(response.secret)

    def close_clients(self) -> None:
        while self._closables:
            self._closables.pop().close()


def start_auth_server(data_dir: Path, **settings: Any) -> AuthServer:
    """Starts a LocalServer with auth on and the admin's token set to BOOTSTRAP_TOKEN."""
    local = LocalServer(data_dir, auth=True, auth_bootstrap_token=BOOTSTRAP_TOKEN, **settings)
    local.start()
    return AuthServer(local)
