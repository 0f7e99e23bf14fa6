"""When runs changed: ``runs.changed_ms``, and the feed WatchExperiments reads from it.

Every write to a run (its info, params, tags, inputs, lifecycle, metric points) sets the run's
``changed_ms`` to the server's clock in the same transaction, and on PostgreSQL NOTIFYs the run's
id (delivered at commit) so every replica's watchers wake. A watcher reads the runs of its
experiments ordered by ``(changed_ms, run_id)`` with the ``ix_runs_experiment_changed`` index:
pages after a position for the snapshot, then each wake-up the window of the last
``LATE_COMMIT_MS``. The window is why nothing is missed: a transaction takes its time before it
commits, so a change may become visible after later-stamped ones; any that commits within the
window (and clocks of replicas that agree within it) is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tracklane.exceptions import NotFound
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.transactions import experiment_pk, now_ms, transaction
from tracklane_server.store.metrics.points_channel import CHANNEL
from tracklane_server.store.tracking.run_loading import fill_runs

__all__ = ["LATE_COMMIT_MS", "RunFeed", "changed_after", "touch"]

#: How late a change may become visible after its stamp and still be sent (see above).
LATE_COMMIT_MS = 30_000

_TOUCH = sa.text("UPDATE runs SET changed_ms = :now WHERE run_id = :run_id AND changed_ms < :now")
_NOTIFY = sa.text("SELECT pg_notify(:channel, :run_id)")


def touch(conn: Connection, run_id: str, *, notify: bool = True) -> None:
    """Marks the run changed now, in the caller's transaction; ``notify`` wakes other replicas'
    watchers at commit (PostgreSQL; metric writes notify in their own statement already)."""
    conn.execute(_TOUCH, {"now": now_ms(), "run_id": run_id})
    if notify and conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL, "run_id": run_id})


def changed_after(
    conn: Connection, experiment_pks: Sequence[int], after_ms: int, after_id: str, limit: int
) -> list[tuple[str, int]]:
    """(run_id, changed_ms) of the experiments' runs after position (after_ms, after_id), in
    (changed_ms, run_id) order, at most ``limit``."""
    r = t.runs.c
    position = sa.or_(r.changed_ms > after_ms, sa.and_(r.changed_ms == after_ms, r.run_id > after_id))
    rows = conn.execute(
        sa.select(r.run_id, r.changed_ms)
        .where(r.experiment_id.in_(list(experiment_pks)), position)
        .order_by(r.changed_ms, r.run_id)
        .limit(limit)
    )
    return [(str(run_id), int(changed)) for run_id, changed in rows]


class RunFeed:
    """The reads of WatchExperiments, on the store's engine (called off the event loop)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def require_experiments(self, experiment_ids: Sequence[str]) -> list[int]:
        """The experiments' keys.

        Raises:
            NotFound: an id names no experiment (``experiment_ids``).
        """
        pks = [experiment_pk(e) for e in experiment_ids]
        with transaction(self.engine) as conn:
            found = set(
                conn.execute(
                    sa.select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id.in_(pks))
                ).scalars()
            )
        for experiment_id, pk in zip(experiment_ids, pks, strict=True):
            if pk not in found:
                raise NotFound(f"experiment {experiment_id!r} does not exist", field="experiment_ids")
        return pks

    def changed_after(
        self, experiment_pks: Sequence[int], after_ms: int, after_id: str, limit: int
    ) -> list[tuple[str, int]]:
        with transaction(self.engine) as conn:
            return changed_after(conn, experiment_pks, after_ms, after_id, limit)

    def runs(self, run_ids: Sequence[str], out: Any) -> None:
        """Appends the runs, whole (metrics with summaries), to ``out`` in this order."""
        with transaction(self.engine) as conn:
            fill_runs(conn, run_ids, out)
