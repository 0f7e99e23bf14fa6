"""The SQL store the services use: experiments, runs and metrics over one engine."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracklane.entities import ViewType
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane.v1 import tracking_pb2
from tracklane_server.store.db import engine as db
from tracklane_server.store.db import schema as t
from tracklane_server.store.db.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.db.transactions import transaction
from tracklane_server.store.metrics.pages import Position, read_downsampled, read_page
from tracklane_server.store.metrics.points import Points
from tracklane_server.store.registry.models import RegistryStore
from tracklane_server.store.tracking.experiments import ExperimentStore
from tracklane_server.store.tracking.run_loading import fill_runs
from tracklane_server.store.tracking.runs import RunLifecycle, RunStore
from tracklane_server.store.tracking.search import search_run_ids
from tracklane_server.store.validation import check_count
from tracklane_server.store.validation import page_size as check_page_size

#: Points per history page, by default and at most: what bounds a history call's memory (about
#: 10 MiB with the response) however long the history is.
HISTORY_PAGE_DEFAULT = 100_000
HISTORY_PAGE_MAX = 100_000
#: ``max_points`` above this is capped: a chart has no use for more.
MAX_POINTS_MAX = 100_000
BATCH_HISTORY_MAX = 100


class SqlStore:
    """Everything the tracking service stores, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine, default_artifact_root: str) -> None:
        self.engine = engine
        self.experiments = ExperimentStore(engine, default_artifact_root)
        self.runs = RunStore(engine, self.experiments)
        self.lifecycle = RunLifecycle(engine, self.runs)
        self.registry = RegistryStore(engine)

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
        self,
        run_id: str,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int = 0,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[Points, str]:
        """One metric's points in step order (ties by timestamp, then write order) and the next
        page's token.

        With ``max_points`` (capped at MAX_POINTS_MAX) the whole range comes back downsampled in one
        page. Without it, pages hold ``page_size`` points (capped at HISTORY_PAGE_MAX); the token is
        the position of the last point sent, so points logged meanwhile never shift a page. Either
        way the history is read a few chunks at a time (store/metrics/pages.py).
        """
        max_points = _max_points(max_points)
        size = check_page_size(page_size, default=HISTORY_PAGE_DEFAULT, maximum=HISTORY_PAGE_MAX)
        query = fingerprint("history", run_id, key, start_step, end_step, max_points, size)
        after = _history_cursor(page_token, query) if page_token else None
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            if max_points:
                found = read_downsampled(
                    conn, run_id, key, start_step=start_step, end_step=end_step, max_points=max_points
                )
                return found, ""
            page, last = read_page(
                conn, run_id, key, start_step=start_step, end_step=end_step, after=after, limit=size
            )
        return page, "" if last is None else encode_page_token(_cursor(last), query_fingerprint=query)

    def batch_metric_history(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str],
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_points: int = 0,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[tuple[str, str, Points]], str]:
        """Several runs x keys at once: (run_id, key, points) per series with points, run then key order.

        ``page_size`` bounds the points of a page across series; a series cut by it continues at the
        start of the next page.
        """
        check_count(len(run_ids), BATCH_HISTORY_MAX, "run_ids")
        check_count(len(keys), BATCH_HISTORY_MAX, "keys")
        max_points = _max_points(max_points)
        size = check_page_size(page_size, default=HISTORY_PAGE_DEFAULT, maximum=HISTORY_PAGE_MAX)
        query = fingerprint(
            "batch-history", list(run_ids), list(keys), start_step, end_step, max_points, size
        )
        start, after = 0, None
        if page_token:
            cursor = decode_page_token(page_token, query_fingerprint=query, fields={"pair": int})
            start = cursor["pair"]
            if start < 0:
                raise InvalidArgument("page_token: not a token for this listing", field="page_token")
            if "step" in cursor:
                after = _history_cursor(page_token, query, pair=int)
        pairs = [(run_id, key) for run_id in dict.fromkeys(run_ids) for key in dict.fromkeys(keys)]
        found: list[tuple[str, str, Points]] = []
        budget = size
        with transaction(self.engine) as conn:
            known = set(
                conn.execute(sa.select(t.runs.c.run_id).where(t.runs.c.run_id.in_(list(run_ids)))).scalars()
            )
            for i, run_id in enumerate(run_ids):
                if run_id not in known:
                    raise NotFound(f"run {run_id!r} does not exist", field=f"run_ids[{i}]")
            for index in range(start, len(pairs)):
                run_id, key = pairs[index]
                last: Position | None = None
                if max_points:  # a downsampled series is at most max_points: never cut
                    page = read_downsampled(
                        conn, run_id, key, start_step=start_step, end_step=end_step, max_points=max_points
                    )
                else:
                    page, last = read_page(
                        conn,
                        run_id,
                        key,
                        start_step=start_step,
                        end_step=end_step,
                        after=after if index == start else None,
                        limit=budget,
                    )
                if len(page):
                    found.append((run_id, key, page))
                budget -= len(page)
                if last is not None:
                    token = {"pair": index, **_cursor(last)}
                    return found, encode_page_token(token, query_fingerprint=query)
                if budget <= 0 and index + 1 < len(pairs):
                    return found, encode_page_token({"pair": index + 1}, query_fingerprint=query)
        return found, ""

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_text: str = "",
        order_by: Sequence[str] = (),
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        page_size: int = 0,
        page_token: str = "",
    ) -> tracking_pb2.SearchRunsResponse:
        """One page of runs matching an MLflow-style filter, in ``order_by`` order, and the next token.

        The response message itself: this is the hot path, and rows go straight into it."""
        size = check_page_size(page_size)
        with transaction(self.engine) as conn:
            page = search_run_ids(
                conn,
                experiment_ids,
                filter_text=filter_text,
                order_by=order_by,
                view_type=view_type,
                page_size=size,
                page_token=page_token,
            )
            response = tracking_pb2.SearchRunsResponse(next_page_token=page.next_page_token)
            fill_runs(conn, page.run_ids, response.runs)
            return response

    def close(self) -> None:
        self.engine.dispose()


def _max_points(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("max_points: must not be negative", field="max_points")
    return min(requested, MAX_POINTS_MAX)


def _cursor(last: Position) -> dict[str, int]:
    return {"step": last.step, "ts": last.timestamp, "seq": last.seq, "idx": last.index}


def _history_cursor(token: str, query: str, **more: type) -> Position:
    """Where a history page token says to continue (anyone can forge one: its shape is checked)."""
    fields = {"step": int, "ts": int, "seq": int, "idx": int, **more}
    cursor = decode_page_token(token, query_fingerprint=query, fields=fields)
    return Position(cursor["step"], cursor["ts"], cursor["seq"], cursor["idx"])
