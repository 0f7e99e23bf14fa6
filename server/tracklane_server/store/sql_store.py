"""The SQL store the services use: experiments, runs and metrics over one engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tracklane.entities import ViewType
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane.v1 import tracking_pb2
from tracklane_server.store import db
from tracklane_server.store import schema as t
from tracklane_server.store.page_tokens import decode_page_token, encode_page_token, fingerprint
from tracklane_server.store.sql_common import transaction
from tracklane_server.store.sql_experiments import ExperimentStore
from tracklane_server.store.sql_metrics import Points, downsample, read_points
from tracklane_server.store.sql_registry import RegistryStore
from tracklane_server.store.sql_run_loading import fill_runs
from tracklane_server.store.sql_runs import RunLifecycle, RunStore
from tracklane_server.store.sql_search import search_run_ids
from tracklane_server.store.validation import check_count
from tracklane_server.store.validation import page_size as check_page_size

HISTORY_PAGE_DEFAULT = 100_000
HISTORY_PAGE_MAX = 1_000_000
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
        """One metric's points in step order (ties by timestamp) and the next page's token.

        With ``max_points`` the whole range comes back downsampled in one page. Without it, pages
        hold ``page_size`` points; the token is a keyset cursor (last step, points already sent at
        that step), so points logged at later steps meanwhile never shift a page.
        """
        if max_points < 0:
            raise InvalidArgument("max_points: must not be negative", field="max_points")
        size = check_page_size(page_size, default=HISTORY_PAGE_DEFAULT, maximum=HISTORY_PAGE_MAX)
        query = fingerprint("history", run_id, key, start_step, end_step, max_points, size)
        cursor = _history_cursor(page_token, query) if page_token else None
        first = start_step if cursor is None else int(cursor["step"])
        with transaction(self.engine) as conn:
            self.runs.require_run(conn, run_id)
            points = read_points(conn, run_id, key, start_step=first, end_step=end_step)
        if max_points:
            return downsample(points, max_points), ""
        page, rest = _page(points, 0 if cursor is None else int(cursor["skip"]), size, first)
        return page, "" if rest is None else encode_page_token(rest, query_fingerprint=query)

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
        if max_points < 0:
            raise InvalidArgument("max_points: must not be negative", field="max_points")
        size = check_page_size(page_size, default=HISTORY_PAGE_DEFAULT, maximum=HISTORY_PAGE_MAX)
        query = fingerprint(
            "batch-history", list(run_ids), list(keys), start_step, end_step, max_points, size
        )
        cursor = (
            decode_page_token(page_token, query_fingerprint=query, fields={"i": int})
            if page_token
            else {"i": 0}
        )
        if "step" in cursor:
            cursor = _history_cursor(page_token, query, i=int)
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
            for index in range(int(cursor["i"]), len(pairs)):
                run_id, key = pairs[index]
                resuming = index == cursor["i"] and "step" in cursor
                first = int(cursor["step"]) if resuming else start_step
                points = read_points(conn, run_id, key, start_step=first, end_step=end_step)
                if max_points:
                    points = downsample(points, max_points)
                page, rest = _page(points, int(cursor["skip"]) if resuming else 0, budget, first)
                if len(page):
                    found.append((run_id, key, page))
                budget -= len(page)
                if rest is not None:
                    return found, encode_page_token({"i": index, **rest}, query_fingerprint=query)
                if budget == 0 and index + 1 < len(pairs):
                    return found, encode_page_token({"i": index + 1}, query_fingerprint=query)
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


def _history_cursor(token: str, query: str, **more: type) -> dict[str, Any]:
    """A history page token's cursor, its shape checked (anyone can forge one): INVALID_ARGUMENT."""
    cursor = decode_page_token(token, query_fingerprint=query, fields={"step": int, "skip": int, **more})
    if cursor["skip"] < 0 or ("i" in more and cursor["i"] < 0):
        raise InvalidArgument("page_token: not a token for this listing", field="page_token")
    return cursor


def _page(points: Points, skip: int, size: int, first: int | None) -> tuple[Points, dict[str, int] | None]:
    """``size`` points after the first ``skip`` (those already sent at step ``first``), and the
    cursor for the rest: the last step sent and how many points at that step were sent in all."""
    page = points.take(skip, skip + size)
    if skip + size >= len(points):
        return page, None
    last = int(page.steps[-1])
    sent_at_last = int(np.count_nonzero(page.steps == last)) + (skip if first == last else 0)
    return page, {"step": last, "skip": sent_at_last}
