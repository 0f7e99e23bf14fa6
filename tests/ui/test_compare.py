"""Compare: overlaid curves, the diff table, parallel coordinates and a scatter, for three runs."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui._data import Seeded


def test_compare_three_runs(page: Page, base_url: str, seeded: Seeded, shot: object) -> None:
    # run-00 and run-06 share every param and tag; run-03 differs in optimizer and team.
    ids = [seeded.run_ids[0], seeded.run_ids[6], seeded.run_ids[3]]
    page.goto(f"{base_url}/compare?runs={','.join(ids)}")
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()
    diff = page.get_by_role("table", name="Differences")
    same = diff.get_by_role("row", name=re.compile(r"^lr 0\.1 0\.1 0\.1$"))
    expect(same).to_be_visible()
    page.get_by_label("Only differences").check()
    expect(same).to_have_count(0)
    expect(diff.get_by_role("row", name="optimizer adam adam sgd")).to_be_visible()

    loss = page.get_by_role("figure", name="Chart of loss")
    expect(loss.get_by_label(re.compile("^Chart of loss:"))).to_have_attribute("data-points", "600")
    legend = loss.locator(".u-legend")
    for name in ("run-00", "run-06", "run-03"):
        expect(legend).to_contain_text(name)

    parallel = page.get_by_role(
        "img", name=re.compile("^Parallel coordinates of params.lr, params.optimizer")
    )
    expect(parallel.locator("canvas")).to_have_count(1)
    scatter = page.get_by_role("img", name=re.compile("^Scatter of metrics.acc against"))
    expect(scatter.locator("canvas")).to_have_count(1)
    shot(page, "compare", full_page=True)
