"""Authentication over real gRPC: tokens on unary and streaming calls, users and tokens RPCs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import tracklane
from tests.auth_helpers import AuthServer, AuthUser, start_auth_server
from tracklane import _channel, exceptions
from tracklane.testing import LocalServer
from tracklane.v1 import (
    artifacts_pb2,
    artifacts_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    tracking_pb2,
    tracking_pb2_grpc,
)

WRONG_TOKEN = "tlk_not-a-token-anyone-was-given-0123456789"


def _code(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()  # type: ignore[attr-defined,no-any-return]


def _every_kind_of_call(channel: grpc.Channel, run_id: str) -> dict[str, Callable[[], Any]]:
    """One call of each shape: unary, client-, server- and bidirectional streaming."""
    tracking = tracking_pb2_grpc.TrackingServiceStub(channel)
    artifacts = artifacts_pb2_grpc.ArtifactServiceStub(channel)
    batch = tracking_pb2.StreamMetricsRequest(
        run_id=run_id, writer_id="auth-test-writer", sequence=1, keys=["loss"], key_indices=[0],
        values=[0.5], steps=[1], timestamps_ms=[1],
    )  # fmt: skip
    upload = [
        artifacts_pb2.UploadArtifactRequest(header=artifacts_pb2.UploadHeader(run_id=run_id, path="a.txt")),
        artifacts_pb2.UploadArtifactRequest(chunk=b"hello"),
    ]
    return {
        "unary": lambda: tracking.GetRun(tracking_pb2.GetRunRequest(run_id=run_id), timeout=30),
        "client-stream": lambda: artifacts.UploadArtifact(iter(upload), timeout=30),
        "server-stream": lambda: list(
            tracking.WatchRun(tracking_pb2.WatchRunRequest(run_id=run_id, start_step=0), timeout=2)
        ),
        "bidi-stream": lambda: list(tracking.StreamMetrics(iter([batch]), timeout=30)),
    }


@pytest.fixture
def alice(auth: AuthServer) -> AuthUser:
    return auth.create_user("alice")


@pytest.fixture
def alice_run(alice: AuthUser) -> str:
    client = alice.client()
    return client.create_run(client.create_experiment(f"exp-{alice.name}")).info.run_id


def test_a_token_lets_its_user_in_and_names_them(auth: AuthServer, alice: AuthUser) -> None:
    client = alice.client()
    experiment_id = client.create_experiment(f"exp-{alice.name}")
    run = client.create_run(experiment_id, tags={"mlflow.user": "someone-else"})
    assert run.info.user_id == alice.name
    current = alice.auth_stub().GetCurrentUser(auth_pb2.GetCurrentUserRequest()).user
    assert (current.name, current.is_admin) == (alice.name, False)
    assert current.HasField("create_time")


def test_the_caller_is_recorded_not_the_user_metadata(alice: AuthUser, alice_run: str) -> None:
    client = alice.client()
    name = f"model-{alice.name}"
    client.create_registered_model(name)
    registry = registry_pb2_grpc.RegistryServiceStub(alice.channel())
    response = registry.CreateModelVersion(
        registry_pb2.CreateModelVersionRequest(
            name=name, source=f"runs:/{alice_run}/model", run_id=alice_run
        ),
        metadata=[("user", "mallory")],
    )
    assert response.model_version.user_id == alice.name


def test_runs_user_id_is_the_callers_with_auth(alice: AuthUser) -> None:
    tracking = tracking_pb2_grpc.TrackingServiceStub(alice.channel())
    experiment_id = alice.client().create_experiment(f"claims-{alice.name}")
    run = tracking.CreateRun(
        tracking_pb2.CreateRunRequest(experiment_id=experiment_id, user_id="mallory")
    ).run
    assert run.info.user_id == alice.name


@pytest.mark.parametrize("kind", ["unary", "client-stream", "server-stream", "bidi-stream"])
@pytest.mark.parametrize(
    "authorization",
    [None, f"Bearer {WRONG_TOKEN}", "Basic dXNlcjpwYXNzd29yZA==", "Bearer "],
    ids=["missing", "wrong", "not-bearer", "empty"],
)
def test_every_kind_of_call_needs_a_valid_token(
    auth: AuthServer, alice_run: str, kind: str, authorization: str | None
) -> None:
    channel = _raw_channel(auth, [("authorization", authorization)] if authorization else [])
    with pytest.raises(grpc.RpcError) as err:
        _every_kind_of_call(channel, alice_run)[kind]()
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    details = err.value.details()  # type: ignore[attr-defined]
    assert "token" in details
    secret = (authorization or "").partition(" ")[2]
    if secret:
        assert secret not in details


def _raw_channel(auth: AuthServer, metadata: list[tuple[str, str]]) -> grpc.Channel:
    """A channel sending exactly this metadata (the client's own would add a well-formed header)."""
    channel = grpc.insecure_channel(auth.uri.removeprefix("grpc://"))
    auth._closables.append(channel)
    return grpc.intercept_channel(channel, _Metadata(metadata))


class _Metadata(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self.metadata = metadata

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_Details(details, self.metadata), request)

    intercept_unary_stream = intercept_unary_unary
    intercept_stream_unary = intercept_unary_unary
    intercept_stream_stream = intercept_unary_unary


class _Details(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = details.compression


@pytest.mark.parametrize("kind", ["unary", "client-stream", "server-stream", "bidi-stream"])
def test_every_kind_of_call_works_with_a_valid_token(alice: AuthUser, alice_run: str, kind: str) -> None:
    call = _every_kind_of_call(alice.channel(), alice_run)[kind]
    if kind == "server-stream":  # a watch runs until its deadline: it was let in if that is what ends it
        assert _code(call) == grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        call()


def test_health_and_reflection_need_no_token(auth: AuthServer) -> None:
    channel = auth.channel(None)
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(
        reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert "tracklane.v1.AuthService" in names


def test_revoking_a_token_takes_effect_at_once(auth: AuthServer, alice: AuthUser, alice_run: str) -> None:
    client = alice.client()
    assert client.get_run(alice_run).info.run_id == alice_run  # resolved, so now cached
    tokens = alice.auth_stub().ListTokens(auth_pb2.ListTokensRequest()).tokens
    assert len(tokens) == 1
    alice.auth_stub().RevokeToken(auth_pb2.RevokeTokenRequest(token_id=tokens[0].token_id))
    with pytest.raises(exceptions.Unauthenticated):
        client.get_run(alice_run)
    assert (
        _code(_every_kind_of_call(alice.channel(), alice_run)["bidi-stream"])
        == grpc.StatusCode.UNAUTHENTICATED
    )
    again = auth.admin.auth_stub()
    assert _code(lambda: again.RevokeToken(auth_pb2.RevokeTokenRequest(token_id=tokens[0].token_id))) == (
        grpc.StatusCode.NOT_FOUND
    )


def test_an_expired_token_is_refused(auth: AuthServer, alice: AuthUser, alice_run: str) -> None:
    expire = Timestamp()
    expire.FromMilliseconds(int(time.time() * 1000) + 1500)
    created = alice.auth_stub().CreateToken(auth_pb2.CreateTokenRequest(name="short", expire_time=expire))
    assert created.token.expire_time == expire
    short_lived = auth.client(created.secret)
    short_lived.get_run(alice_run)  # valid now, and cached
    time.sleep(max(0.0, expire.ToMilliseconds() / 1000 - time.time()) + 0.1)
    with pytest.raises(exceptions.Unauthenticated):
        short_lived.get_run(alice_run)
    alice.client().get_run(alice_run)  # her other token lives on


def test_expire_time_in_the_past_is_refused(alice: AuthUser) -> None:
    past = Timestamp()
    past.FromMilliseconds(int(time.time() * 1000) - 1000)
    with pytest.raises(grpc.RpcError) as err:
        alice.auth_stub().CreateToken(auth_pb2.CreateTokenRequest(name="old", expire_time=past))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "expire_time" in err.value.details()  # type: ignore[attr-defined]


def test_tokens_are_listed_without_secrets_and_show_their_use(auth: AuthServer, alice: AuthUser) -> None:
    stub = alice.auth_stub()
    created = stub.CreateToken(auth_pb2.CreateTokenRequest(name="laptop"))
    assert created.secret.startswith("tlk_")
    auth.client(created.secret).search_experiments()
    listed = {t.token_id: t for t in stub.ListTokens(auth_pb2.ListTokensRequest()).tokens}
    assert set(listed) >= {created.token.token_id}
    assert listed[created.token.token_id].name == "laptop"
    assert listed[created.token.token_id].HasField("last_used_time")
    assert not listed[created.token.token_id].HasField("expire_time")
    assert created.secret not in str(stub.ListTokens(auth_pb2.ListTokensRequest()))
    assert [t.user_name for t in listed.values()] == [alice.name] * len(listed)


def test_the_token_can_come_from_the_environment(
    alice: AuthUser, auth: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_channel.TOKEN_ENV, alice.token)
    with tracklane.Client(auth.uri) as client:
        assert client.create_experiment(f"env-{alice.name}")


def test_non_admins_manage_only_themselves(auth: AuthServer, alice: AuthUser) -> None:
    bob = auth.create_user("bob")
    stub = alice.auth_stub()
    denied = {
        "CreateUser": lambda: stub.CreateUser(
            auth_pb2.CreateUserRequest(user=auth_pb2.User(name="x-" + alice.name))
        ),
        "ListUsers": lambda: stub.ListUsers(auth_pb2.ListUsersRequest()),
        "GetUser(other)": lambda: stub.GetUser(auth_pb2.GetUserRequest(name=bob.name)),
        "GetUser(missing)": lambda: stub.GetUser(auth_pb2.GetUserRequest(name="nobody-at-all")),
        "UpdateUser(self)": lambda: stub.UpdateUser(
            auth_pb2.UpdateUserRequest(
                user=auth_pb2.User(name=alice.name, is_admin=True), update_mask=FieldMask(paths=["is_admin"])
            )
        ),
        "DeleteUser": lambda: stub.DeleteUser(auth_pb2.DeleteUserRequest(name=bob.name)),
        "CreateToken(other)": lambda: stub.CreateToken(auth_pb2.CreateTokenRequest(user_name=bob.name)),
        "ListTokens(other)": lambda: stub.ListTokens(auth_pb2.ListTokensRequest(user_name=bob.name)),
    }
    assert {name: _code(call) for name, call in denied.items()} == dict.fromkeys(
        denied, grpc.StatusCode.PERMISSION_DENIED
    )
    bobs_token = bob.auth_stub().ListTokens(auth_pb2.ListTokensRequest()).tokens[0].token_id
    # Someone else's token id is not found, as if it did not exist; and it still works afterwards.
    assert _code(lambda: stub.RevokeToken(auth_pb2.RevokeTokenRequest(token_id=bobs_token))) == (
        grpc.StatusCode.NOT_FOUND
    )
    bob.client().search_experiments()
    assert stub.GetUser(auth_pb2.GetUserRequest(name=alice.name)).user.name == alice.name


def test_admins_manage_users_and_their_tokens(auth: AuthServer) -> None:
    admin = auth.admin.auth_stub()
    carol = auth.create_user("carol")
    assert admin.GetUser(auth_pb2.GetUserRequest(name=carol.name)).user.is_admin is False
    promoted = admin.UpdateUser(
        auth_pb2.UpdateUserRequest(
            user=auth_pb2.User(name=carol.name, is_admin=True), update_mask=FieldMask(paths=["is_admin"])
        )
    ).user
    assert promoted.is_admin
    # Promotion is seen at once although carol's token was resolved (and cached) before.
    assert carol.auth_stub().ListUsers(auth_pb2.ListUsersRequest(page_size=1)).users
    extra = admin.CreateToken(auth_pb2.CreateTokenRequest(user_name=carol.name, name="ci"))
    assert extra.token.user_name == carol.name
    listed = admin.ListTokens(auth_pb2.ListTokensRequest(user_name=carol.name)).tokens
    assert extra.token.token_id in {t.token_id for t in listed}
    admin.RevokeToken(auth_pb2.RevokeTokenRequest(token_id=extra.token.token_id))
    admin.DeleteUser(auth_pb2.DeleteUserRequest(name=carol.name))
    with pytest.raises(exceptions.Unauthenticated):
        carol.client().search_experiments()
    assert _code(lambda: admin.GetUser(auth_pb2.GetUserRequest(name=carol.name))) == grpc.StatusCode.NOT_FOUND


def test_bad_user_requests_name_the_field(auth: AuthServer, alice: AuthUser) -> None:
    admin = auth.admin.auth_stub()
    cases = {
        "user.name": (
            lambda: admin.CreateUser(auth_pb2.CreateUserRequest(user=auth_pb2.User(name="no spaces"))),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "user.name ": (
            lambda: admin.CreateUser(auth_pb2.CreateUserRequest(user=auth_pb2.User(name=alice.name))),
            grpc.StatusCode.ALREADY_EXISTS,
        ),
        "update_mask.paths[0]": (
            lambda: admin.UpdateUser(
                auth_pb2.UpdateUserRequest(
                    user=auth_pb2.User(name=alice.name), update_mask=FieldMask(paths=["name"])
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "user_name": (
            lambda: admin.CreateToken(auth_pb2.CreateTokenRequest(user_name="nobody-at-all")),
            grpc.StatusCode.NOT_FOUND,
        ),
        "page_token": (
            lambda: admin.ListUsers(auth_pb2.ListUsersRequest(page_token="garbage")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    }
    for field, (call, code) in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            call()
        error = exceptions.from_rpc_error(err.value)
        assert (error.code, error.field) == (code, field.strip()), field


def test_list_users_pages_by_name(auth: AuthServer) -> None:
    for _ in range(3):
        auth.create_user("pager")
    admin = auth.admin.auth_stub()
    names: list[str] = []
    request = auth_pb2.ListUsersRequest(page_size=2)
    while True:
        response = admin.ListUsers(request)
        assert len(response.users) <= 2
        names.extend(u.name for u in response.users)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    assert names == sorted(names)
    assert len(names) == len(set(names)) >= 4  # admin and the pagers at least


@pytest.fixture
def private_auth_server(tmp_path: Path) -> Iterator[AuthServer]:
    """A server of this test alone: counting admins needs a user table nobody else changes."""
    server = start_auth_server(tmp_path)
    yield server
    server.close_clients()
    server.local.stop()


def test_the_last_admin_stays(private_auth_server: AuthServer) -> None:
    admin = private_auth_server.admin.auth_stub()
    demote = auth_pb2.UpdateUserRequest(
        user=auth_pb2.User(name="admin", is_admin=False), update_mask=FieldMask(paths=["is_admin"])
    )
    assert _code(lambda: admin.UpdateUser(demote)) == grpc.StatusCode.FAILED_PRECONDITION
    assert _code(lambda: admin.DeleteUser(auth_pb2.DeleteUserRequest(name="admin"))) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    other = private_auth_server.create_user("second-admin", is_admin=True)
    admin.UpdateUser(demote)  # now there is another admin
    assert not other.auth_stub().GetUser(auth_pb2.GetUserRequest(name="admin")).user.is_admin


def test_auth_service_without_auth_is_failed_precondition(tracking_server: LocalServer) -> None:
    channel = _channel.make_channel(tracking_server.uri)
    try:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest())
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # type: ignore[attr-defined]
        assert "--auth" in err.value.details()  # type: ignore[attr-defined]
        assert (
            _code(lambda: stub.CreateToken(auth_pb2.CreateTokenRequest()))
            == grpc.StatusCode.FAILED_PRECONDITION
        )
    finally:
        channel.close()
