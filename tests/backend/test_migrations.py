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
from tracklane_server.store import db
from tracklane_server.store.schema import Base


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
