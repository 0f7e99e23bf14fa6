"""Fault suite, tracking side: experiments, runs, params and tags written from several threads while
the server is killed -9 and restarted on its port.

A careful client retries what failed transiently with the same outcome: an experiment is looked up
by name before it is created again (its first attempt may have committed although the answer was
lost), a run is created with a ``request_id`` (a retry returns the same run), params and tags are
logged again as they were, the run is ended again. Afterwards each experiment and run exists once,
each run in its experiment with everything acknowledged for it, and nothing else exists.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import pytest

import tracklane
from tests.e2e._fault_helpers import retried
from tests.servers import ServerProcess, fixed_bind, serve
from tracklane.entities import Param, RunStatus, RunTag

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

THREADS = 3
OPS = 15  # per thread


class Tracker(threading.Thread):
    """Creates OPS experiments, each with one finished run holding a param and a tag."""

    def __init__(self, number: int, address: str, started: threading.Event) -> None:
        super().__init__(name=f"tracker-{number}")
        self.number = number
        self.client = tracklane.Client(f"grpc://{address}", timeout=30)
        self.started = started
        #: operation id -> (experiment id, run id) as acknowledged.
        self.acked: dict[str, tuple[str, str]] = {}
        self.failures: list[Exception] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(OPS):
                if i == 2:
                    self.started.set()
                self._operation(f"t{self.number}-{i}", i)
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()
            self.client.close()

    def _operation(self, op: str, i: int) -> None:
        client = self.client

        def existing() -> str | None:
            found = client.get_experiment_by_name(f"exp-{op}")
            return None if found is None else found.experiment_id

        experiment_id = retried(
            functools.partial(client.create_experiment, f"exp-{op}"),
            on_retry=existing,
            failures=self.failures,
        )
        create = functools.partial(client.create_run, experiment_id, run_name=op, request_id=f"req-{op}")
        run_id = retried(create, failures=self.failures).info.run_id
        batch = functools.partial(
            client.log_batch, run_id, params=[Param("i", str(i))], tags=[RunTag("op", op)]
        )
        retried(batch, failures=self.failures)
        retried(functools.partial(client.set_terminated, run_id), failures=self.failures)
        self.acked[op] = (experiment_id, run_id)


def test_server_killed_mid_tracking_writes(tmp_path: Path, postgres_uri: str) -> None:
    bind = fixed_bind()
    servers: list[ServerProcess] = [serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind)]
    started = [threading.Event() for _ in range(THREADS)]
    trackers = [Tracker(n, bind, started[n]) for n in range(THREADS)]
    try:
        for tracker in trackers:
            tracker.start()
        for event in started:
            event.wait(120)
        for _ in range(2):
            servers[-1].kill()
            servers.append(serve(tmp_path, "--backend-store-uri", postgres_uri, bind=bind))
            threading.Event().wait(1.0)  # let the trackers get going again
        for tracker in trackers:
            tracker.join(240)
            assert not tracker.is_alive(), f"{tracker.name} is stuck"
            if tracker.error is not None:
                raise tracker.error
        assert sum(len(t.failures) for t in trackers) > 0  # the kills hit calls under way
        with tracklane.Client(f"grpc://{bind}") as client:
            experiments = client.search_experiments(filter_string="name LIKE 'exp-t_-%'")
            assert sorted(e.name for e in experiments) == sorted(
                f"exp-t{n}-{i}" for n in range(THREADS) for i in range(OPS)
            )  # each once, none half-made
            runs = client.search_runs([e.experiment_id for e in experiments])
            assert len(runs) == THREADS * OPS  # one run per experiment: no retry made a second
            by_id = {r.info.run_id: r for r in runs}
            for tracker in trackers:
                for op, (experiment_id, run_id) in tracker.acked.items():
                    run = by_id[run_id]
                    assert run.info.experiment_id == experiment_id
                    assert client.get_experiment(experiment_id).name == f"exp-{op}"
                    assert run.info.run_name == op
                    assert run.data.params == {"i": op.rsplit("-", 1)[1]}
                    assert run.data.tags["op"] == op
                    assert run.info.status == RunStatus.FINISHED
    finally:
        for s in servers:
            s.kill()
