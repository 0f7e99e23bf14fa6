"""At scale: the runs grid renders only what is in view (rows and columns) and loads pages as it
scrolls; a chart of 100,000 points draws a bounded number of them, keeps a single-point spike,
and a zoom asks the server again for just that range."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect

import tracklane
from tracklane.entities import Param
from tracklane.testing import LocalServer

RUNS = 1_200  # three pages of 500
PARAMS = 120


def test_grid_renders_only_the_rows_and_columns_in_view(
    page: Page, base_url: str, tracking_server: LocalServer, unique: str, shot: object
) -> None:
    with tracklane.Client(tracking_server.uri) as client:
        experiment_id = client.create_experiment(f"wide-{unique}")

        def one(i: int) -> None:
            run_id = client.create_run(experiment_id, run_name=f"r{i:04d}", start_time=1_700_000_000_000 + i)
            if i < 50:
                params = [Param(f"p{j:03d}", str(i * j)) for j in range(PARAMS)]
                client.log_batch(run_id.info.run_id, params=params)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(RUNS)))
    columns = ",".join(["attr:run_name", *(f"param:p{j:03d}" for j in range(PARAMS))])
    page.goto(f"{base_url}/experiments/{experiment_id}?cols={columns}")
    grid = page.get_by_role("grid", name="Runs")
    expect(grid).to_have_attribute("aria-rowcount", str(500 + 1))
    assert grid.get_by_role("row").count() < 60
    cells = grid.get_by_role("row").nth(1).get_by_role("gridcell").count()
    assert cells < 40, f"{cells} cells rendered for {PARAMS + 2} columns"
    # Scrolling to the end loads the next pages until every run is there.
    for loaded in (1_000, RUNS):
        grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
        expect(grid).to_have_attribute("aria-rowcount", str(loaded + 1), timeout=15_000)
    grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
    expect(grid.get_by_role("link", name="r0000")).to_be_visible()
    assert grid.get_by_role("row").count() < 60
    shot(page, "bottom")


def test_chart_keeps_a_spike_and_zoom_requeries_the_range(
    page: Page, base_url: str, tracking_server: LocalServer, unique: str, shot: object
) -> None:
    n, spike_at = 100_000, 61_803
    values = np.sin(np.arange(n) / 500.0)
    values[spike_at] = 50.0
    with tracklane.Client(tracking_server.uri) as client:
        experiment_id = client.create_experiment(f"spike-{unique}")
        run_id = client.create_run(experiment_id, run_name="spiky").info.run_id
        with client.metric_stream() as stream:
            stream.log_metric_array(run_id, "signal", values, np.arange(n))
        client.update_run(run_id, status="FINISHED")
    page.goto(f"{base_url}/runs/{run_id}?tab=charts")
    plot = page.get_by_label(re.compile("^Chart of signal:"))
    expect(plot).to_have_attribute("data-drawn-max", "50")
    drawn = int(plot.get_attribute("data-drawn-points") or 0)
    assert 0 < drawn <= 4 * 1280, drawn  # bounded by the chart's width, not by the 100,000 points
    shot(page, "overview")

    with page.expect_request(lambda r: "BatchGetMetricHistory" in r.url) as request:
        plot.focus()
        for _ in range(3):
            page.keyboard.press("+")  # each halves the range around its middle
    assert request.value.post_data_buffer  # a new query (binary protobuf) for the zoomed range
    expect(page.get_by_role("figure", name="Chart of signal").get_by_role("status")).to_have_text("")
    # 1/8 of the steps around the middle (43,750..56,250) holds no spike: the drawn max is the sine's.
    expect(plot).to_have_attribute("data-drawn-max", re.compile(r"^0\.99"))
    page.keyboard.press("ArrowRight")  # pan by a quarter of the range, toward the spike
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(plot).to_have_attribute("data-drawn-max", "50", timeout=5000)
    shot(page, "zoomed")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download signal as CSV").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "run,run_id,key,step,timestamp_ms,value"
    assert any(line.endswith(",50") for line in lines[1:])
