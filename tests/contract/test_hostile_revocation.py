"""Taking access away, on every backend: a revoked token, a deleted user, a demoted admin or a lowered
grant must stop working at once on the server that made the change: for the next unary call (even
while other threads use the token at that moment) and for streams opened before the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tests.auth_helpers import AuthServer, AuthUser
from tests.contract.hostile import OpenStream
from tracklane import _channel
from tracklane.v1 import auth_pb2, auth_pb2_grpc, tracking_pb2, tracking_pb2_grpc

pytestmark = pytest.mark.timeout(300)

#: Long enough for a refused stream to end, far shorter than the 5 s cache it must not wait for.
PROMPTLY = 2.0


class OpenWatch:
    """A WatchRun call whose responses are collected by a thread, with the code it ended with."""

    def __init__(self, channel: grpc.Channel, run_id: str) -> None:
        stub = tracking_pb2_grpc.TrackingServiceStub(channel)
        self._call = stub.WatchRun(tracking_pb2.WatchRunRequest(run_id=run_id), timeout=120)
        self.steps: list[int] = []
        self.ended = threading.Event()
        self.code: grpc.StatusCode | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self._call:
                for series in response.series:
                    self.steps.extend(series.steps)
            self.code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            self.code = err.code()  # type: ignore[attr-defined]
        self.ended.set()

    def wait_for_steps(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.steps) < count:
            assert time.monotonic() < deadline, f"watch got {self.steps}"
            time.sleep(0.02)

    def close(self) -> None:
        self._call.cancel()


@dataclass
class Shared:
    """alice's experiment and run, shared with bob at ``level``."""

    alice: AuthUser
    bob: AuthUser
    experiment_id: str
    run_id: str
    closables: list[Any] = field(default_factory=list)

    def alice_tracking(self) -> tracking_pb2_grpc.TrackingServiceStub:
        return tracking_pb2_grpc.TrackingServiceStub(self.alice.channel())

    def log(self, step: int) -> None:
        """alice logs a point (LogBatch), which wakes watchers."""
        self.alice_tracking().LogBatch(
            tracking_pb2.LogBatchRequest(
                run_id=self.run_id,
                metrics=[tracking_pb2.Metric(key="loss", value=float(step), step=step, timestamp_ms=1)],
            ),
            timeout=30,
        )

    def stored_steps(self) -> list[int]:
        history = self.alice_tracking().GetMetricHistory(
            tracking_pb2.GetMetricHistoryRequest(run_id=self.run_id, key="loss"), timeout=30
        )
        return sorted(history.series.steps)


def _share(auth: AuthServer, level: int) -> Iterator[Shared]:
    alice, bob = auth.create_user("alice"), auth.create_user("bob")
    tracking = tracking_pb2_grpc.TrackingServiceStub(alice.channel())
    experiment_id = tracking.CreateExperiment(
        tracking_pb2.CreateExperimentRequest(name=f"shared-{alice.name}")
    ).experiment.experiment_id
    run_id = tracking.CreateRun(tracking_pb2.CreateRunRequest(experiment_id=experiment_id)).run.info.run_id
    alice.auth_stub().SetExperimentPermission(
        auth_pb2.SetExperimentPermissionRequest(
            experiment_id=experiment_id, user_name=bob.name, permission=level
        )
    )
    shared = Shared(alice, bob, experiment_id, run_id)
    yield shared
    for closable in shared.closables:
        closable.close()


@pytest.fixture
def editable(auth: AuthServer) -> Iterator[Shared]:
    yield from _share(auth, auth_pb2.PERMISSION_EDIT)


@pytest.fixture
def readable(auth: AuthServer) -> Iterator[Shared]:
    yield from _share(auth, auth_pb2.PERMISSION_READ)


def _token_id(user: AuthUser) -> str:
    (token,) = (
        user.server.admin.auth_stub().ListTokens(auth_pb2.ListTokensRequest(user_name=user.name)).tokens
    )
    return str(token.token_id)


def _revoke(user: AuthUser) -> None:
    user.server.admin.auth_stub().RevokeToken(auth_pb2.RevokeTokenRequest(token_id=_token_id(user)))


def _delete(user: AuthUser) -> None:
    user.server.admin.auth_stub().DeleteUser(auth_pb2.DeleteUserRequest(name=user.name))


def _stream(shared: Shared) -> OpenStream:
    stream = OpenStream(shared.bob.channel(), shared.run_id)
    shared.closables.append(stream)
    stream.send(1)
    ack = stream.answer()
    assert ack.points_written == 1, ack
    return stream


# -- StreamMetrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("take_away", [_revoke, _delete], ids=["token-revoked", "user-deleted"])
def test_an_open_metric_stream_ends_unauthenticated_and_writes_nothing_more(
    editable: Shared, take_away: Callable[[AuthUser], None]
) -> None:
    stream = _stream(editable)
    take_away(editable.bob)
    stream.send(2)  # sent after the change: must not be stored
    assert stream.answer(timeout=PROMPTLY) == grpc.StatusCode.UNAUTHENTICATED
    assert editable.stored_steps() == [1]


def test_an_idle_metric_stream_ends_when_its_token_is_revoked(editable: Shared) -> None:
    stream = _stream(editable)
    _revoke(editable.bob)
    assert stream.answer(timeout=PROMPTLY) == grpc.StatusCode.UNAUTHENTICATED


def test_a_lowered_grant_refuses_the_next_batch_of_an_open_stream(editable: Shared) -> None:
    stream = _stream(editable)
    editable.alice.auth_stub().SetExperimentPermission(
        auth_pb2.SetExperimentPermissionRequest(
            experiment_id=editable.experiment_id,
            user_name=editable.bob.name,
            permission=auth_pb2.PERMISSION_READ,
        )
    )
    stream.send(2)
    ack = stream.answer(timeout=PROMPTLY)
    assert ack.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0], ack
    assert ack.points_written == 0
    assert editable.stored_steps() == [1]


def test_a_demoted_admin_stream_is_checked_per_run_from_then_on(auth: AuthServer, editable: Shared) -> None:
    carol = auth.create_user("carol", is_admin=True)  # no grant on alice's experiment: admin only
    stream = OpenStream(carol.channel(), editable.run_id)
    editable.closables.append(stream)
    stream.send(1)
    assert stream.answer().points_written == 1
    auth.admin.auth_stub().UpdateUser(
        auth_pb2.UpdateUserRequest(user=auth_pb2.User(name=carol.name, is_admin=False))
    )
    stream.send(2)
    ack = stream.answer(timeout=PROMPTLY)
    assert ack.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0], ack
    assert editable.stored_steps() == [1]


# -- WatchRun ----------------------------------------------------------------------------------------


def _watch(shared: Shared) -> OpenWatch:
    watch = OpenWatch(shared.bob.channel(), shared.run_id)
    shared.closables.append(watch)
    deadline = time.monotonic() + 30
    step = 0
    while not watch.steps:  # the watch is live once it gets a point logged after it started
        assert time.monotonic() < deadline
        step += 1
        shared.log(step)
        time.sleep(0.1)
    return watch


@pytest.mark.parametrize("take_away", [_revoke, _delete], ids=["token-revoked", "user-deleted"])
def test_an_open_watch_ends_unauthenticated_and_receives_nothing_new(
    readable: Shared, take_away: Callable[[AuthUser], None]
) -> None:
    watch = _watch(readable)
    before = list(watch.steps)
    take_away(readable.bob)
    readable.log(1000)
    assert watch.ended.wait(PROMPTLY), "the watch went on"
    assert watch.code == grpc.StatusCode.UNAUTHENTICATED
    assert 1000 not in watch.steps
    assert watch.steps == before


def test_an_unshared_watch_ends_with_permission_denied(readable: Shared) -> None:
    watch = _watch(readable)
    readable.alice.auth_stub().DeleteExperimentPermission(
        auth_pb2.DeleteExperimentPermissionRequest(
            experiment_id=readable.experiment_id, user_name=readable.bob.name
        )
    )
    readable.log(1000)
    assert watch.ended.wait(PROMPTLY), "the watch went on"
    assert watch.code == grpc.StatusCode.PERMISSION_DENIED
    assert 1000 not in watch.steps


# -- the cache race: a lookup started before the change must not outlive it ---------------------------

TRIALS = 150  # for the token revocation, as the report that found the race ran it
FEWER_TRIALS = 60  # deleting and demoting failed within a few trials before the fix
THREADS = 6


@dataclass
class Trial:
    """A token several threads use at once while the test takes its access away."""

    channel: grpc.Channel
    call: Callable[[grpc.Channel], Any]
    #: (started, None if it succeeded else the code) of every call, from every thread.
    calls: list[tuple[float, grpc.StatusCode | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def use(self, started: threading.Barrier) -> None:
        started.wait()
        while not self.stop.is_set():
            began = time.monotonic()
            code = None
            try:
                self.call(self.channel)
            except grpc.RpcError as err:
                code = err.code()  # type: ignore[attr-defined]
            with self.lock:
                self.calls.append((began, code))


def _race(
    make: Callable[[], tuple[str, Callable[[], object]]],
    call: Callable[[grpc.Channel], Any],
    refused: grpc.StatusCode,
    server: AuthServer,
    trials: int,
) -> None:
    """``trials`` times: a fresh credential used by THREADS threads while ``take_away()`` runs;
    once it has returned, every call that starts must be refused with ``refused``."""
    late: list[str] = []
    for trial in range(trials):
        token, take_away = make()
        channel = _channel.make_channel(server.uri, token=token)
        state = Trial(channel, call)
        started = threading.Barrier(THREADS + 1)
        threads = [threading.Thread(target=state.use, args=(started,)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        started.wait()  # the threads' first lookups miss the cache: race them
        take_away()
        done = time.monotonic()
        deadline = done + 30
        while sum(began > done for began, _ in state.calls) < THREADS and time.monotonic() < deadline:
            time.sleep(0.01)  # until each thread (on average) made a call that began after it
        state.stop.set()
        for thread in threads:
            thread.join()
        channel.close()
        after = [code for began, code in state.calls if began > done]
        assert after, "no call started after the change"
        wrong = [code for code in after if code != refused]
        if wrong:
            late.append(f"trial {trial}: {len(wrong)} of {len(after)} calls after it got {set(wrong)}")
    assert not late, late


def test_a_revoked_token_fails_at_once_while_threads_use_it(auth: AuthServer) -> None:
    user = auth.create_user("racer")

    def make() -> tuple[str, Callable[[], object]]:
        reply = auth.admin.auth_stub().CreateToken(auth_pb2.CreateTokenRequest(user_name=user.name))
        token_id = reply.token.token_id
        admin = auth.admin.auth_stub()
        return reply.secret, lambda: admin.RevokeToken(auth_pb2.RevokeTokenRequest(token_id=token_id))

    def call(channel: grpc.Channel) -> Any:
        return auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(), timeout=30
        )

    _race(make, call, grpc.StatusCode.UNAUTHENTICATED, auth, TRIALS)


def test_a_deleted_user_fails_at_once_while_threads_use_its_token(auth: AuthServer) -> None:
    def make() -> tuple[str, Callable[[], object]]:
        user = auth.create_user("doomed")
        admin = auth.admin.auth_stub()
        return user.token, lambda: admin.DeleteUser(auth_pb2.DeleteUserRequest(name=user.name))

    def call(channel: grpc.Channel) -> Any:
        return auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(), timeout=30
        )

    _race(make, call, grpc.StatusCode.UNAUTHENTICATED, auth, FEWER_TRIALS)


def test_a_demoted_admin_loses_admin_calls_at_once_while_threads_use_it(auth: AuthServer) -> None:
    def make() -> tuple[str, Callable[[], object]]:
        user = auth.create_user("demoted", is_admin=True)
        admin = auth.admin.auth_stub()
        request = auth_pb2.UpdateUserRequest(user=auth_pb2.User(name=user.name, is_admin=False))
        return user.token, lambda: admin.UpdateUser(request)

    def call(channel: grpc.Channel) -> Any:
        return auth_pb2_grpc.AuthServiceStub(channel).ListUsers(
            auth_pb2.ListUsersRequest(page_size=1), timeout=30
        )

    _race(make, call, grpc.StatusCode.PERMISSION_DENIED, auth, FEWER_TRIALS)
