"""Tokens, names and quotas against a hostile caller, on every backend: out-of-range expiry times,
tokens that would outlive the token making them, probing which user names exist through the
permission calls, and streams opened with a fresh client id each to dodge the per-client limit.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.auth_helpers import AuthServer, AuthUser, start_auth_server
from tests.contract.hostile import OpenStream
from tracklane import exceptions
from tracklane.v1 import auth_pb2, registry_pb2, registry_pb2_grpc, tracking_pb2, tracking_pb2_grpc
from tracklane.wire.headers import CLIENT_ID_HEADER

DAY_MS = 86_400_000


def _error(call: Callable[[], Any]) -> exceptions.TracklaneError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return exceptions.from_rpc_error(info.value)


def _stamp(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- CreateToken's expire_time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(2**62, 0), (1_700_000_000, -5), (-(2**62), 0), (1_700_000_000, 10**9)]
)
def test_an_out_of_range_expire_time_is_invalid_argument_naming_it(
    auth: AuthServer, seconds: int, nanos: int, caplog: pytest.LogCaptureFixture
) -> None:
    request = auth_pb2.CreateTokenRequest(name="t", expire_time=Timestamp(seconds=seconds, nanos=nanos))
    with caplog.at_level(logging.ERROR):
        error = _error(lambda: auth.admin.auth_stub().CreateToken(request))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.field == "expire_time"
    assert "expire_time" in error.message
    assert not [r for r in caplog.records if r.exc_info], "the server logged a traceback"


# -- a token's children ------------------------------------------------------------------------------


def _short_lived(auth: AuthServer, user: AuthUser, seconds: int) -> tuple[str, int]:
    expire = _now_ms() + seconds * 1000
    reply = auth.admin.auth_stub().CreateToken(
        auth_pb2.CreateTokenRequest(user_name=user.name, name="short", expire_time=_stamp(expire))
    )
    return str(reply.secret), int(reply.token.expire_time.ToMilliseconds())


def test_a_token_cannot_mint_one_that_outlives_it(auth: AuthServer) -> None:
    alice = auth.create_user("alice")
    secret, expires = _short_lived(auth, alice, 60)
    stub = AuthUser(auth, alice.name, secret).auth_stub()
    # Without an expiry the new token lives as long as the one that made it, not forever.
    child = stub.CreateToken(auth_pb2.CreateTokenRequest(name="child")).token
    assert child.HasField("expire_time")
    assert child.expire_time.ToMilliseconds() == expires
    later = auth_pb2.CreateTokenRequest(name="later", expire_time=_stamp(expires + DAY_MS))
    error = _error(lambda: stub.CreateToken(later))
    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, "expire_time")
    sooner = stub.CreateToken(
        auth_pb2.CreateTokenRequest(name="sooner", expire_time=_stamp(expires - 10_000))
    ).token
    assert sooner.expire_time.ToMilliseconds() == expires - 10_000


def test_a_short_lived_admin_token_cannot_mint_a_lasting_one_for_anyone(auth: AuthServer) -> None:
    admin = auth.create_user("admin2", is_admin=True)
    secret, expires = _short_lived(auth, admin, 60)
    stub = AuthUser(auth, admin.name, secret).auth_stub()
    bob = auth.create_user("bob")
    minted = stub.CreateToken(auth_pb2.CreateTokenRequest(user_name=bob.name, name="for-bob")).token
    assert minted.expire_time.ToMilliseconds() == expires


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """A server making tokens of at most 7 days, and letting one user hold 3 streams."""
    server = start_auth_server(tmp_path_factory.mktemp("capped"), max_token_days=7, max_streams_per_user=3)
    yield server
    server.close_clients()
    server.local.stop()


def test_max_token_days_bounds_every_new_token(capped: AuthServer) -> None:
    stub = capped.admin.auth_stub()  # the bootstrap token never expires: only the maximum applies
    before = _now_ms()
    token = stub.CreateToken(auth_pb2.CreateTokenRequest(name="default")).token
    assert before + 7 * DAY_MS <= token.expire_time.ToMilliseconds() <= _now_ms() + 7 * DAY_MS
    too_long = auth_pb2.CreateTokenRequest(name="long", expire_time=_stamp(_now_ms() + 8 * DAY_MS))
    error = _error(lambda: stub.CreateToken(too_long))
    assert (error.code, error.field) == (grpc.StatusCode.INVALID_ARGUMENT, "expire_time")
    assert "--max-token-days" in error.message


# -- who learns that a user name exists -------------------------------------------------------------


@pytest.fixture
def manager(auth: AuthServer) -> tuple[AuthUser, str, str]:
    """A non-admin with an experiment and a registered model of their own."""
    carol = auth.create_user("carol")
    channel = carol.channel()
    experiment_id = (
        tracking_pb2_grpc.TrackingServiceStub(channel)
        .CreateExperiment(tracking_pb2.CreateExperimentRequest(name=f"mine-{carol.name}"))
        .experiment.experiment_id
    )
    model = f"model-{carol.name}"
    registry_pb2_grpc.RegistryServiceStub(channel).CreateRegisteredModel(
        registry_pb2.CreateRegisteredModelRequest(name=model)
    )
    return carol, experiment_id, model


def _answer(call: Callable[[], Any], name: str) -> tuple[str, str, str]:
    """(code, message with ``name`` blanked, field) of a call, "OK" and its reply when it succeeds."""
    try:
        reply = call()
    except grpc.RpcError as err:
        error = exceptions.from_rpc_error(err)
        return error.code.name, error.message.replace(name, "NAME"), error.field
    return "OK", str(reply).replace(name, "NAME"), ""


def test_a_manager_cannot_tell_a_missing_user_from_an_existing_one(
    auth: AuthServer, manager: tuple[AuthUser, str, str]
) -> None:
    carol, experiment_id, model = manager
    stub = carol.auth_stub()
    existing, missing = auth.create_user("dave").name, f"ghost-{uuid.uuid4().hex[:8]}"

    def calls(name: str) -> list[Callable[[], Any]]:
        read = auth_pb2.PERMISSION_READ
        return [
            lambda: stub.DeleteExperimentPermission(  # no grant yet: nothing to remove
                auth_pb2.DeleteExperimentPermissionRequest(experiment_id=experiment_id, user_name=name)
            ),
            lambda: stub.SetExperimentPermission(
                auth_pb2.SetExperimentPermissionRequest(
                    experiment_id=experiment_id, user_name=name, permission=read
                )
            ),
            lambda: stub.DeleteRegisteredModelPermission(
                auth_pb2.DeleteRegisteredModelPermissionRequest(name=model, user_name=name)
            ),
            lambda: stub.SetRegisteredModelPermission(
                auth_pb2.SetRegisteredModelPermissionRequest(name=model, user_name=name, permission=read)
            ),
        ]

    for for_existing, for_missing in zip(calls(existing), calls(missing), strict=True):
        assert _answer(for_existing, existing) == _answer(for_missing, missing)
    # What a grant to a missing name does: nothing, for nobody.
    listed = stub.ListExperimentPermissions(
        auth_pb2.ListExperimentPermissionsRequest(experiment_id=experiment_id)
    )
    assert missing not in {p.user_name for p in listed.permissions}


def test_an_admin_is_told_that_a_user_does_not_exist(
    auth: AuthServer, manager: tuple[AuthUser, str, str]
) -> None:
    _, experiment_id, model = manager
    stub = auth.admin.auth_stub()
    missing = f"ghost-{uuid.uuid4().hex[:8]}"
    for call in (
        lambda: stub.SetExperimentPermission(
            auth_pb2.SetExperimentPermissionRequest(
                experiment_id=experiment_id, user_name=missing, permission=auth_pb2.PERMISSION_READ
            )
        ),
        lambda: stub.SetRegisteredModelPermission(
            auth_pb2.SetRegisteredModelPermissionRequest(
                name=model, user_name=missing, permission=auth_pb2.PERMISSION_READ
            )
        ),
    ):
        error = _error(call)
        assert (error.code, error.field) == (grpc.StatusCode.NOT_FOUND, "user_name")
        assert "does not exist" in error.message


# -- streams per user --------------------------------------------------------------------------------


def test_fresh_client_ids_do_not_lift_the_per_user_stream_limit(capped: AuthServer) -> None:
    alice, bob = capped.create_user("alice"), capped.create_user("bob")
    with alice.client() as client:
        run_id = client.create_run(client.create_experiment(f"streams-{alice.name}")).info.run_id
    opened = []

    def open_one(user: AuthUser) -> OpenStream:
        stream = OpenStream(user.channel(), run_id, [(CLIENT_ID_HEADER, uuid.uuid4().hex)])
        opened.append(stream)
        return stream

    try:
        for step in range(3):  # three streams, each from a "new client", all working
            stream = open_one(alice)
            stream.send(step)
            assert stream.answer().points_written == 1
        refused = open_one(alice)
        assert refused.answer() == grpc.StatusCode.RESOURCE_EXHAUSTED
        watch = tracking_pb2_grpc.TrackingServiceStub(alice.channel()).WatchRun(
            tracking_pb2.WatchRunRequest(run_id=run_id), timeout=30
        )
        error = _error(lambda: next(watch))  # WatchRun counts against the same limit
        assert (error.code, error.field) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "max_streams_per_user")
        other = open_one(bob)  # bob's budget is his own (his writes are refused: not his run)
        other.send(1)
        assert other.answer().error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    finally:
        for stream in opened:
            stream.close()
