"""Migrations and models agree, upgrade is idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from tests.conftest import create_postgres_database, drop_postgres_database
from tracklane_server.store.db import engine as db
from tracklane_server.store.db.schema import Base


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = db.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    admin = request.getfixturevalue("postgres_admin_uri")
    uri = create_postgres_database(admin)
    engine = db.create_engine(uri, pool_size=1)
    yield engine
    engine.dispose()
    drop_postgres_database(admin, uri)


def test_upgrade_matches_the_models_and_is_idempotent(empty_engine: Engine) -> None:
    assert db.current_revision(empty_engine) is None
    db.upgrade(empty_engine)
    db.upgrade(empty_engine)  # a second start changes nothing
    assert db.current_revision(empty_engine) == db.head_revision()
    with empty_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def _upgrade_to(engine: Engine, revision: str) -> None:
    from alembic import command

    config = db._alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def test_0006_computes_the_summaries_of_existing_points(empty_engine: Engine) -> None:
    """Points stored before summaries existed get theirs from the chunks (min, max, count in SQL, the
    first point decoded from the chunks that start at the lowest step)."""
    import math

    import numpy as np
    import sqlalchemy as sa
    from alembic.script import ScriptDirectory

    from tracklane_server.store.metrics.chunk_codec import encode_ints

    before = ScriptDirectory.from_config(db._alembic_config()).get_revision("0006").down_revision
    assert isinstance(before, str)
    _upgrade_to(empty_engine, before)

    # (seq, [(step, value, timestamp)...]) per key, each chunk sorted as the writer stores them.
    stored = {
        "loss": [
            (1, [(2, 0.5, 10), (3, 0.25, 11)]),
            (2, [(0, float("nan"), 20), (1, 4.0, 21)]),  # lowest step 0, NaN there
            (3, [(0, 7.0, 19), (5, 0.125, 30)]),  # also step 0, earlier timestamp: this is first
        ],
        "acc": [(1, [(1, float("nan"), 1)]), (2, [(1, 0.9, 1), (2, 0.8, 2)])],  # tie: seq 1 first
        "dead": [(1, [(4, float("nan"), 5)])],  # only NaN
    }
    with empty_engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
                "description, creation_time, last_update_time) "
                "VALUES (7, 'old', 'file:///x', 'active', '', 0, 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, "
                "lifecycle_stage, artifact_uri, description) "
                "VALUES ('r1', 7, 'old-run', '', 'FINISHED', 0, 'active', 'file:///x/r1', '')"
            )
        )
        for key, chunks in stored.items():
            points = [p for _, chunk in chunks for p in chunk]
            last = max(points, key=lambda p: (p[0], p[2]))
            conn.execute(
                sa.text(
                    "INSERT INTO latest_metrics (run_id, key, value, step, timestamp_ms, chunk_seq) "
                    "VALUES ('r1', :k, :v, :s, :t, :c)"
                ),
                {
                    "k": key,
                    "v": None if math.isnan(last[1]) else last[1],
                    "s": last[0],
                    "t": last[2],
                    "c": len(chunks),
                },
            )
            for seq, chunk in chunks:
                steps = np.array([p[0] for p in chunk], np.int64)
                values = np.array([p[1] for p in chunk], np.float64)
                finite = values[~np.isnan(values)]
                conn.execute(
                    sa.text(
                        "INSERT INTO metric_chunks (run_id, key, seq, first_step, last_step, count, "
                        'min_value, max_value, steps, "values", timestamps) '
                        "VALUES ('r1', :k, :seq, :fs, :ls, :n, :lo, :hi, :steps, :values, :stamps)"
                    ),
                    {
                        "k": key,
                        "seq": seq,
                        "fs": int(steps[0]),
                        "ls": int(steps[-1]),
                        "n": len(chunk),
                        "lo": float(finite.min()) if finite.size else None,
                        "hi": float(finite.max()) if finite.size else None,
                        "steps": encode_ints(steps),
                        "values": values.tobytes(),
                        "stamps": encode_ints(np.array([p[2] for p in chunk], np.int64)),
                    },
                )
    db.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        rows = {
            r.key: r
            for r in conn.execute(
                sa.text(
                    "SELECT key, min_value, max_value, first_value, first_step, first_timestamp_ms, "
                    "value_count FROM latest_metrics WHERE run_id = 'r1'"
                )
            )
        }
    assert (rows["loss"].min_value, rows["loss"].max_value, rows["loss"].value_count) == (0.125, 7.0, 6)
    assert (rows["loss"].first_value, rows["loss"].first_step, rows["loss"].first_timestamp_ms) == (
        7.0,
        0,
        19,
    )
    assert (rows["acc"].first_value, rows["acc"].first_step, rows["acc"].value_count) == (None, 1, 3)  # NaN
    assert (rows["acc"].min_value, rows["acc"].max_value) == (0.8, 0.9)
    assert (rows["dead"].min_value, rows["dead"].max_value, rows["dead"].value_count) == (None, None, 1)


def test_0005_marks_the_runs_an_experiment_delete_took_along(empty_engine: Engine) -> None:
    """Rows deleted before 0005: the runs stamped with their deleted experiment's update time are
    the ones its restore brought back, so they get the mark; nothing else does."""
    db.upgrade(empty_engine, "0004")
    runs = sa.table(
        "runs",
        *(sa.column(c) for c in ("run_id", "experiment_id", "run_name", "user_id", "status", "start_time")),
        *(sa.column(c) for c in ("lifecycle_stage", "artifact_uri", "description", "deleted_time")),
    )
    experiments = sa.table(
        "experiments",
        *(sa.column(c) for c in ("experiment_id", "name", "artifact_location", "lifecycle_stage")),
        *(sa.column(c) for c in ("description", "creation_time", "last_update_time")),
    )
    fixed = {"artifact_location": "", "description": "", "creation_time": 1, "last_update_time": 500}
    with empty_engine.begin() as conn:
        conn.execute(
            experiments.insert(),
            [
                {"experiment_id": 1, "name": "gone", "lifecycle_stage": "deleted"} | fixed,
                {"experiment_id": 2, "name": "live", "lifecycle_stage": "active"} | fixed,
            ],
        )
        rows = [
            ("taken-along", 1, "deleted", 500),
            ("deleted-before", 1, "deleted", 300),
            ("live-in-live", 2, "active", None),
            ("deleted-in-live", 2, "deleted", 500),
        ]
        conn.execute(
            runs.insert(),
            [
                {"run_id": run_id, "experiment_id": exp, "lifecycle_stage": stage, "deleted_time": when}
                | {"run_name": run_id, "status": "FINISHED", "start_time": 1}
                | {"user_id": "", "artifact_uri": "", "description": ""}
                for run_id, exp, stage, when in rows
            ],
        )
    db.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        marked = dict(conn.execute(sa.text("SELECT run_id, deleted_with_experiment FROM runs")).all())
    assert {k: bool(v) for k, v in marked.items()} == {
        "taken-along": True,
        "deleted-before": False,
        "live-in-live": False,
        "deleted-in-live": False,
    }
