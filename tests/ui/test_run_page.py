"""The run page: overview with summaries, an editable description, charts, and artifact previews."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

import tracklane
from tests.ui._data import Seeded
from tracklane.testing import LocalServer


def open_run(page: Page, base_url: str, run_id: str, query: str = "") -> None:
    page.goto(f"{base_url}/runs/{run_id}{query}")
    expect(page.get_by_role("tablist", name="Run sections")).to_be_visible()


def test_overview_shows_params_metrics_with_summaries_and_lineage(
    page: Page, base_url: str, seeded: Seeded, shot: object
) -> None:
    open_run(page, base_url, seeded.run_ids[0])
    expect(page.get_by_role("heading", level=1)).to_contain_text("run-00")
    params = page.get_by_role("table", name="Params")
    expect(params.get_by_role("row", name="lr 0.1")).to_be_visible()
    metrics = page.get_by_role("table", name="Metrics", exact=True)
    loss = metrics.get_by_role("row", name=re.compile("^loss"))
    # latest, step, min, max, first, points: loss = exp(-step/40) over 200 steps
    expect(loss.get_by_role("cell")).to_have_text(
        [re.compile(r"0\.006"), "199", re.compile(r"0\.006"), "1", "1", "200"]
    )
    versions = page.get_by_role("list", name="Registered versions")
    expect(versions.get_by_role("link")).to_have_text(
        [f"{seeded.model_name} version 2", f"{seeded.model_name} version 1"]
    )
    shot(page, "overview", full_page=True)

    open_run(page, base_url, seeded.parent_run)
    expect(page.get_by_role("list", name="Child runs").get_by_role("link")).to_have_count(2)
    open_run(page, base_url, seeded.child_runs[0])
    expect(page.get_by_role("link", name="sweep-parent")).to_be_visible()


def test_description_edit_is_saved(
    page: Page, base_url: str, tracking_server: LocalServer, seeded: Seeded
) -> None:
    run_id = seeded.run_ids[3]
    open_run(page, base_url, run_id)
    page.get_by_role("button", name="Edit description").click()
    page.get_by_role("textbox", name="Description").fill("Baseline with **cosine** schedule")
    page.get_by_role("button", name="Save description").click()
    expect(page.get_by_text("Baseline with **cosine** schedule")).to_be_visible()
    with tracklane.Client(tracking_server.uri) as client:
        assert client.get_run(run_id).info.description == "Baseline with **cosine** schedule"


def test_charts_tab_draws_every_metric(page: Page, base_url: str, seeded: Seeded, shot: object) -> None:
    open_run(page, base_url, seeded.run_ids[1], "?tab=charts")
    for key in ("acc", "loss"):
        figure = page.get_by_role("figure", name=f"Chart of {key}")
        expect(figure.locator("canvas")).to_have_count(1)
    loss = page.get_by_role("figure", name="Chart of loss")
    expect(loss.get_by_label(re.compile("^Chart of loss:"))).to_have_attribute("data-points", "200")
    page.get_by_label("Log Y").check()
    page.get_by_label("X axis").select_option(label="Relative time")
    assert "logy=1" in page.url
    assert "x=relative" in page.url
    shot(page, "charts")


def artifact(page: Page, *path: str) -> None:
    tree = page.get_by_role("tree", name="Artifacts")
    for part in path:
        tree.get_by_role("button", name=re.compile(f"^\\s*{re.escape(part)}")).first.click()


def test_artifact_previews(page: Page, base_url: str, seeded: Seeded, shot: object) -> None:
    open_run(page, base_url, seeded.artifact_run, "?tab=artifacts")
    artifact(page, "config.json")
    code = page.get_by_label("Contents of config.json")
    expect(code).to_contain_text('"dropout": 0.1')
    expect(code.locator(".hljs-attr").first).to_be_visible()  # highlighted
    shot(page, "json")

    artifact(page, "params.yaml")
    expect(page.get_by_label("Contents of params.yaml")).to_contain_text("learning_rate: 0.01")

    artifact(page, "data", "metrics.csv")
    table = page.get_by_role("table", name="Table data/metrics.csv")
    expect(table.get_by_role("columnheader")).to_have_text(["epoch", "loss", "accuracy"])
    expect(table.get_by_role("row")).to_have_count(4)

    artifact(page, "frame.parquet")
    parquet = page.get_by_role("table", name="Table data/frame.parquet")
    expect(parquet.get_by_role("columnheader")).to_have_text(["epoch", "loss", "split"])
    expect(parquet.get_by_role("row")).to_have_count(11)
    shot(page, "parquet")

    artifact(page, "images", "curve.png")
    image = page.get_by_role("img", name="Image images/curve.png")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle())

    artifact(page, "report.html")
    frame = page.get_by_title("HTML report.html")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator("iframe[title='HTML report.html']").get_by_role("heading")).to_have_text(
        "Evaluation report"
    )
    assert page.frames[1].evaluate("document.title") != "ran"  # its script never ran
    shot(page, "html")

    artifact(page, "logs", "train.log")
    expect(page.get_by_role("note")).to_contain_text("Showing the first 512 KiB of")

    artifact(page, "model")
    expect(page.get_by_role("table", name="Signature Inputs")).to_be_visible()
    expect(page.get_by_label("Code to load this model")).to_contain_text(
        f'tracklane.pyfunc.load_model("runs:/{seeded.artifact_run}/model")'
    )
    shot(page, "mlmodel", full_page=True)
