"""Live: points logged while the page is open appear on the chart within a second, and the table
follows new runs and status changes; nothing polls."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

import tracklane
from tracklane.entities import Metric
from tracklane.testing import LocalServer


def test_points_arrive_on_the_chart_while_a_run_logs(
    page: Page, base_url: str, tracking_server: LocalServer, unique: str, shot: object
) -> None:
    with tracklane.Client(tracking_server.uri) as client:
        experiment_id = client.create_experiment(f"live-{unique}")
        run_id = client.create_run(experiment_id, run_name="training").info.run_id
        client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (s + 1), s, 0) for s in range(50)])
        with page.expect_request(re.compile("WatchRun$")):
            page.goto(f"{base_url}/runs/{run_id}?tab=charts")
        plot = page.get_by_label(re.compile("^Chart of loss:"))
        expect(plot).to_have_attribute("data-points", "50")
        page.wait_for_timeout(300)  # the stream's first bytes: its call has started on the server
        for batch in range(3):
            start = 50 + batch * 10
            client.log_batch(run_id, metrics=[Metric("loss", 0.01, s, 0) for s in range(start, start + 10)])
            logged = time.monotonic()
            expect(plot).to_have_attribute("data-points", str(start + 10), timeout=1000)
            assert time.monotonic() - logged < 1.0
        shot(page, "chart")

        # The table is live too: a new run appears and a status change shows, without a reload.
        page.goto(f"{base_url}/experiments/{experiment_id}")
        grid = page.get_by_role("grid", name="Runs")
        expect(grid.get_by_role("link", name="training")).to_be_visible()
        page.wait_for_timeout(500)
        second = client.create_run(experiment_id, run_name="second").info.run_id
        expect(grid.get_by_role("link", name="second")).to_be_visible(timeout=3000)
        client.update_run(second, status="FAILED")
        expect(grid.get_by_role("row", name=re.compile("second")).get_by_text("FAILED")).to_be_visible(
            timeout=3000
        )
        shot(page, "table")
