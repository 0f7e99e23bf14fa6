"""Migrations and models agree, upgrade is idempotent, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
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
