"""Deletes and restores of runs and experiments, interleaved at random, against a model of what
each should do: restore undoes exactly what the delete did.

The calls go back to back, so deletes of a run and of its experiment often land in the same
millisecond (the case a restore keyed on deletion times got wrong).
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import tracklane
from tracklane.entities import LifecycleStage, ViewType

EXPERIMENTS = 2
RUNS_PER_EXPERIMENT = 3
ACTIVE, DELETED = LifecycleStage.ACTIVE, LifecycleStage.DELETED


class Lifecycles(RuleBasedStateMachine):
    """Two experiments of three runs each; the model says which runs are live and which of the
    deleted ones their experiment's delete took along (only those come back with it)."""

    client: tracklane.Client
    prefix: str
    made = 0

    def __init__(self) -> None:
        super().__init__()
        self.experiment_ids: list[str] = []
        self.run_ids: list[list[str]] = []
        self.experiment_stage: dict[str, LifecycleStage] = {}
        self.run_stage: dict[str, LifecycleStage] = {}
        self.taken_along: dict[str, set[str]] = {}  # experiment -> runs its delete deleted

    @initialize()
    def make_experiments(self) -> None:
        for _ in range(EXPERIMENTS):
            Lifecycles.made += 1
            experiment_id = self.client.create_experiment(f"{self.prefix}-{Lifecycles.made}")
            runs = [self.client.create_run(experiment_id).info.run_id for _ in range(RUNS_PER_EXPERIMENT)]
            self.experiment_ids.append(experiment_id)
            self.run_ids.append(runs)
            self.experiment_stage[experiment_id] = ACTIVE
            self.taken_along[experiment_id] = set()
            self.run_stage.update(dict.fromkeys(runs, ACTIVE))

    def _run(self, experiment: int, run: int) -> str:
        return self.run_ids[experiment][run]

    @rule(experiment=st.integers(0, EXPERIMENTS - 1), run=st.integers(0, RUNS_PER_EXPERIMENT - 1))
    def delete_run(self, experiment: int, run: int) -> None:
        run_id = self._run(experiment, run)
        self.client.delete_run(run_id)
        # Deleting a deleted run changes nothing: one its experiment took along still returns with it.
        self.run_stage[run_id] = DELETED

    @rule(experiment=st.integers(0, EXPERIMENTS - 1), run=st.integers(0, RUNS_PER_EXPERIMENT - 1))
    def restore_run(self, experiment: int, run: int) -> None:
        run_id = self._run(experiment, run)
        self.client.restore_run(run_id)
        self.run_stage[run_id] = ACTIVE
        self.taken_along[self.experiment_ids[experiment]].discard(run_id)  # it is its own again

    @rule(experiment=st.integers(0, EXPERIMENTS - 1))
    def delete_experiment(self, experiment: int) -> None:
        experiment_id = self.experiment_ids[experiment]
        self.client.delete_experiment(experiment_id)
        if self.experiment_stage[experiment_id] is ACTIVE:
            live = {r for r in self.run_ids[experiment] if self.run_stage[r] is ACTIVE}
            self.taken_along[experiment_id] = live
            self.run_stage.update(dict.fromkeys(live, DELETED))
        self.experiment_stage[experiment_id] = DELETED

    @rule(experiment=st.integers(0, EXPERIMENTS - 1))
    def restore_experiment(self, experiment: int) -> None:
        experiment_id = self.experiment_ids[experiment]
        self.client.restore_experiment(experiment_id)
        back = self.taken_along[experiment_id] if self.experiment_stage[experiment_id] is DELETED else set()
        self.run_stage.update(dict.fromkeys(back, ACTIVE))
        self.taken_along[experiment_id] = set()
        self.experiment_stage[experiment_id] = ACTIVE

    @invariant()
    def the_server_agrees_with_the_model(self) -> None:
        if not self.experiment_ids:
            return
        runs = self.client.search_runs(self.experiment_ids, run_view_type=ViewType.ALL)
        assert {r.info.run_id: r.info.lifecycle_stage for r in runs} == self.run_stage
        live = self.client.search_runs(self.experiment_ids)  # what users see: the live view
        assert {r.info.run_id for r in live} == {r for r, s in self.run_stage.items() if s is ACTIVE}
        for experiment_id, stage in self.experiment_stage.items():
            assert self.client.get_experiment(experiment_id).lifecycle_stage is stage


@pytest.fixture
def lifecycles(client: tracklane.Client, unique: str) -> type[Lifecycles]:
    """The machine bound to this backend's server."""
    return type("Lifecycles", (Lifecycles,), {"client": client, "prefix": f"lifecycle-{unique}"})


def test_restore_undoes_exactly_what_the_delete_did(lifecycles: type[Lifecycles]) -> None:
    run_state_machine_as_test(
        lifecycles, settings=settings(max_examples=20, stateful_step_count=25, deadline=None)
    )
