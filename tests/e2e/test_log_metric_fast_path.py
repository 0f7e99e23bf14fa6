"""log_metric's C fast path is taken: a rename on the Python side of its contract (the per-thread
runs fluent/state.py hands it, their ``stack``, a run's ``_metrics``) would silently drop every
point to the slow path; these tests fail instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tracklane
from tests.fluent_helpers import fluent_on
from tracklane.testing import LocalServer


def _fast_calls() -> int:
    return int(tracklane.log_metric.fast_calls)  # type: ignore[attr-defined]


def test_plain_calls_in_an_active_run_take_the_fast_path(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as run:
        tracklane.log_metric("loss", 1.0, step=0)  # the slow path: gives the run its buffer
        before = _fast_calls()
        tracklane.log_metric("loss", 0.5, 1)
        tracklane.log_metric("loss", 0.25, step=2)
        tracklane.log_metric("loss", 0.125, 3, 1_700_000_000_000)
        assert _fast_calls() - before == 3
        tracklane.log_metric("loss", 0.0625, step=4, run_id=run.info.run_id)  # a run_id: Python's
        assert _fast_calls() - before == 3
    history = client.get_metric_history(run.info.run_id, "loss")
    assert list(history.steps) == [0, 1, 2, 3, 4]
    assert list(history.values) == [1.0, 0.5, 0.25, 0.125, 0.0625]


def test_the_fast_path_follows_the_state_when_it_is_replaced(
    tracking_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # _reset (and fork) replace the whole fluent state: the C side must be handed the new runs.
    for attempt in range(2):
        spool = tmp_path / f"spool-{attempt}"
        with fluent_on(tracking_server.uri, spool, monkeypatch) as fl, fl.start_run():
            tracklane.log_metric("acc", 0.5)
            before = _fast_calls()
            tracklane.log_metric("acc", 0.75)
            assert _fast_calls() - before == 1
