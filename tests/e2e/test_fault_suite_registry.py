"""Fault suite, registry side: registrations from several threads while the server is killed -9
(and restarted on its port), or while PostgreSQL restarts under it.

Each thread registers versions tagged with a unique operation id, points its own alias at each
new version and moves it to Staging. A call that fails transiently is simply resent: a create
carries the operation id as its request_id, so one whose first attempt committed although the
answer was lost returns that version instead of making another. Afterwards every operation is there
exactly once, versions are numbered 1..N without holes, each alias points at its thread's last
version, every version is in Staging, and a version never exists without its model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import tracklane
from tests.e2e._fault_helpers import restart_postgres, retried
from tests.e2e.test_stream_faults import PrivatePostgres, private_postgres
from tests.servers import ServerProcess, fixed_bind, serve
from tracklane.entities.model_registry import ModelStage, ModelVersion

__all__ = ["private_postgres"]  # the fixture, imported to be used here

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

MODEL = "faulty"
THREADS = 4
OPS = 30  # per thread


class Registrar(threading.Thread):
    """Registers OPS versions, moving alias ``a<n>`` to each and each to Staging, retrying faults."""

    def __init__(self, number: int, address: str, started: threading.Event) -> None:
        super().__init__(name=f"registrar-{number}")
        self.number = number
        self.client = tracklane.Client(f"grpc://{address}", timeout=30)
        self.started = started
        #: operation id -> the version number the server acknowledged for it.
        self.acked: dict[str, int] = {}
        self.error: BaseException | None = None
        #: The transient errors met (and retried).
        self.failures: list[Exception] = []

    def run(self) -> None:
        try:
            for i in range(OPS):
                if i == 3:
                    self.started.set()
                self._operation(f"t{self.number}-{i}")
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()
            self.client.close()

    def _operation(self, op: str) -> None:
        version = self._register(op)
        self.acked[op] = version
        alias = f"a{self.number}"
        retried(lambda: self.client.set_registered_model_alias(MODEL, alias, version), failures=self.failures)
        retried(
            lambda: self.client.transition_model_version_stage(MODEL, version, "Staging"),
            failures=self.failures,
        )
        found = retried(lambda: self.client.get_model_version_by_alias(MODEL, alias), failures=self.failures)
        assert found.version == version

    def _register(self, op: str) -> int:
        def create() -> ModelVersion:
            return self.client.create_model_version(
                MODEL, f"s3://bucket/{op}", tags={"op": op}, request_id=op
            )

        return retried(create, failures=self.failures).version


def chaos_run(address: str, fault: Callable[[], None]) -> list[Registrar]:
    """Starts the registrars, applies ``fault`` once they are under way, and waits for them."""
    started = [threading.Event() for _ in range(THREADS)]
    registrars = [Registrar(n, address, started[n]) for n in range(THREADS)]
    for r in registrars:
        r.start()
    for event in started:
        event.wait(120)
    fault()
    for r in registrars:
        r.join(240)
        assert not r.is_alive(), f"{r.name} is stuck"
        if r.error is not None:
            raise r.error
    assert sum(len(r.failures) for r in registrars) > 0  # the fault hit calls under way
    return registrars


def check_registry(address: str, registrars: list[Registrar]) -> None:
    with tracklane.Client(f"grpc://{address}") as client:
        versions = client.search_model_versions(f"name = '{MODEL}'")
        numbers = sorted(v.version for v in versions)
        assert numbers == list(range(1, THREADS * OPS + 1))  # no hole, none twice
        ops = [v.tags["op"] for v in versions]
        assert sorted(ops) == sorted(f"t{n}-{i}" for n in range(THREADS) for i in range(OPS))  # once each
        by_op = {v.tags["op"]: v for v in versions}
        for r in registrars:
            for op, number in r.acked.items():
                assert by_op[op].version == number  # what was acknowledged is what is stored
            last = r.acked[f"t{r.number}-{OPS - 1}"]
            assert client.get_model_version_by_alias(MODEL, f"a{r.number}").version == last
        assert {v.current_stage for v in versions} == {ModelStage.STAGING}
        model = client.get_registered_model(MODEL)
        assert model.aliases == {f"a{r.number}": r.acked[f"t{r.number}-{OPS - 1}"] for r in registrars}
        assert client.get_latest_versions(MODEL, ["Staging"])[0].version == THREADS * OPS


def test_server_killed_mid_registrations(tmp_path: Path, postgres_uri: str) -> None:
    bind = fixed_bind()
    servers: list[ServerProcess] = [serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind)]
    try:
        with tracklane.Client(f"grpc://{bind}") as client:
            client.create_registered_model(MODEL)

        def kill_and_restart() -> None:
            for _ in range(2):
                servers[-1].kill()
                servers.append(serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind))
                threading.Event().wait(1.0)  # let the registrars get going again

        registrars = chaos_run(bind, kill_and_restart)
        check_registry(bind, registrars)
    finally:
        for s in servers:
            s.kill()


def test_postgres_restarts_mid_registrations(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    server = serve(tmp_path, "--backend-store-uri", private_postgres.uri)
    try:
        with tracklane.Client(f"grpc://{server.address}") as client:
            client.create_registered_model(MODEL)

        def restart_twice() -> None:
            for _ in range(2):
                restart_postgres(private_postgres)
                threading.Event().wait(1.0)

        registrars = chaos_run(server.address, restart_twice)
        check_registry(server.address, registrars)
    finally:
        server.kill()
    assert "Traceback" not in server.log
