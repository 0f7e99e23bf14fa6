"""The SQL store the services use: experiments, runs and metrics over one engine."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from tracklane.entities import MetricSeries
from tracklane_server.store import db
from tracklane_server.store.sql_common import transaction
from tracklane_server.store.sql_experiments import ExperimentStore
from tracklane_server.store.sql_metrics import read_points
from tracklane_server.store.sql_runs import RunStore

log = logging.getLogger(__name__)


class SqlStore:
    """Everything the tracking service stores, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, default_artifact_root: str) -> None:
        self.engine = engine
        self.experiments = ExperimentStore(engine, default_artifact_root)
        self.runs = RunStore(engine, self.experiments)

    @classmethod
    def open(
        cls, uri: str, default_artifact_root: str, *, pool_size: int = 16, migrate: bool = True
    ) -> SqlStore:
        """Connects (Unavailable when it cannot), migrates when asked, and creates the default experiment."""
        engine = db.create_engine(uri, pool_size=pool_size)
        db.check_connection(engine)
        if migrate:
            db.upgrade(engine)
        store = cls(engine, default_artifact_root)
        store.experiments.ensure_default_experiment()
        return store

    def metric_history(
        self, run_id: str, key: str, *, start_step: int | None = None, end_step: int | None = None
    ) -> MetricSeries:
        """One metric's points in step order (ties by timestamp)."""
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            points = read_points(conn, run_id, key, start_step=start_step, end_step=end_step)
        return MetricSeries(
            run_id, key, points.steps.tolist(), points.values.tolist(), points.timestamps.tolist()
        )

    def close(self) -> None:
        self.engine.dispose()
