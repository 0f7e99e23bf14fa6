"""History read a few chunks at a time (store/metrics/pages.py), on SQLite and PostgreSQL: the pages
and the downsampled series are exactly what reading every chunk, merging and sorting gives, for
histories logged in any order (steps out of order, repeated, at the int64 extremes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BACKENDS
from tracklane_server.store.db.transactions import transaction
from tracklane_server.store.metrics import pages as metric_pages
from tracklane_server.store.metrics.pages import read_downsampled, read_page
from tracklane_server.store.metrics.points import F64, I64, Points, downsample_between, write_points
from tracklane_server.store.sql_store import SqlStore

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("pages") / "t.db"
        uri = f"sqlite:///{path}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    opened = SqlStore.open(uri, (tmp_path_factory.mktemp("artifacts")).as_uri())
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two chunks per group: the histories below have dozens, so the stop rule is exercised.
    monkeypatch.setattr(metric_pages, "GROUP_CHUNKS", 2)


def reference(batches: list[list[tuple[int, float, int]]]) -> Points:
    """Every point, sorted as the whole-history read did: step, timestamp, then write order."""
    flat = [p for batch in batches for p in sorted(batch, key=lambda p: (p[0], p[2]))]
    if not flat:
        return Points.empty()
    steps = np.array([p[0] for p in flat], I64)
    values = np.array([p[1] for p in flat], F64)
    stamps = np.array([p[2] for p in flat], I64)
    order = np.lexsort((stamps, steps))  # stable: ties keep write order
    return Points(steps[order], values[order], stamps[order])


def in_range(points: Points, start: int | None, end: int | None) -> Points:
    keep = np.ones(len(points), bool)
    if start is not None:
        keep &= points.steps >= start
    if end is not None:
        keep &= points.steps <= end
    return Points(points.steps[keep], points.values[keep], points.timestamps[keep])


def as_rows(points: Points) -> list[tuple[int, bytes, int]]:
    return [
        (int(s), np.float64(v).tobytes(), int(t))
        for s, v, t in zip(points.steps, points.values, points.timestamps, strict=True)
    ]


steps = st.one_of(st.integers(-20, 60), st.sampled_from([INT64_MIN, INT64_MAX]))
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1.0]))
points = st.tuples(steps, values, st.integers(1, 5))
histories = st.lists(st.lists(points, min_size=1, max_size=12), min_size=0, max_size=40)
bounds = st.one_of(st.none(), st.integers(-25, 65))


def _log(store: SqlStore, batches: list[list[tuple[int, float, int]]]) -> str:
    run_id = store.runs.create_run("0").info.run_id
    for batch in batches:  # one chunk per batch: many chunks, overlapping in steps
        with transaction(store.engine) as conn:
            write_points(conn, run_id, {"m": batch})
    return run_id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=histories, start=bounds, end=bounds, page=st.integers(1, 40))
def test_pages_are_the_sorted_history_cut_in_pieces(
    store: SqlStore,
    batches: list[list[tuple[int, float, int]]],
    start: int | None,
    end: int | None,
    page: int,
) -> None:
    run_id = _log(store, batches)
    expected = in_range(reference(batches), start, end)
    got: list[tuple[int, bytes, int]] = []
    after = None
    with transaction(store.engine) as conn:
        for _ in range(len(expected) + 2):
            found, after = read_page(
                conn, run_id, "m", start_step=start, end_step=end, after=after, limit=page
            )
            assert len(found) <= page
            got += as_rows(found)
            if after is None:
                break
            assert len(found) == page  # a page before the last is full: no empty last page
    assert after is None
    assert got == as_rows(expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=histories, start=bounds, end=bounds, max_points=st.integers(4, 40))
def test_downsampling_a_group_at_a_time_is_downsampling_the_whole(
    store: SqlStore,
    batches: list[list[tuple[int, float, int]]],
    start: int | None,
    end: int | None,
    max_points: int,
) -> None:
    run_id = _log(store, batches)
    whole = in_range(reference(batches), start, end)
    if len(whole) <= max_points:
        expected = whole
    else:
        chosen = downsample_between(whole, max_points, int(whole.steps[0]), int(whole.steps[-1]))
        expected = Points(whole.steps[chosen], whole.values[chosen], whole.timestamps[chosen])
    with transaction(store.engine) as conn:
        got = read_downsampled(conn, run_id, "m", start_step=start, end_step=end, max_points=max_points)
    assert as_rows(got) == as_rows(expected)
    assert len(got) <= max(max_points, 0)


def test_a_page_reads_only_the_chunks_it_needs(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page near the start of a long, in-order history must not load the rest of it."""
    run_id = store.runs.create_run("0", run_name=f"long-{uuid.uuid4().hex[:6]}").info.run_id
    with transaction(store.engine) as conn:
        for first in range(0, 100 * 50, 50):
            write_points(conn, run_id, {"m": [(s, float(s), 1) for s in range(first, first + 50)]})
    loaded: list[int] = []
    real_load = metric_pages._load

    def counting(conn: object, run: str, key: str, seqs: list[int]) -> object:
        loaded.extend(seqs)
        return real_load(conn, run, key, seqs)  # type: ignore[arg-type]

    monkeypatch.setattr(metric_pages, "_load", counting)
    with transaction(store.engine) as conn:
        found, after = read_page(conn, run_id, "m", start_step=None, end_step=None, after=None, limit=120)
    assert list(found.steps) == list(range(120))
    assert after is not None
    assert len(loaded) <= 4  # 120 points: three chunks of 50, plus at most one group's neighbour
