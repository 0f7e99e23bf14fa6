"""The runs table: filter and sort give exactly what the gRPC search gives; errors, grouping,
nesting, columns, selection, and view state in the URL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

import tracklane
from tests.ui._data import Seeded
from tracklane.testing import LocalServer


def run_names(page: Page) -> list[str]:
    """The run names in the table, top to bottom (the grid's name cells are links to runs)."""
    grid = page.get_by_role("grid", name="Runs")
    expect(grid).to_have_attribute("aria-busy", "false")
    return grid.get_by_role("row").locator("a[href^='/runs/']").all_inner_texts()


def grpc_names(server: LocalServer, seeded: Seeded, filter_string: str, order_by: list[str]) -> list[str]:
    with tracklane.Client(server.uri) as client:
        runs = client.search_runs([seeded.experiment_id], filter_string, order_by=order_by)
        return [r.info.run_name for r in runs if not r.info.parent_run_id]


def open_runs(page: Page, base_url: str, seeded: Seeded, query: str = "") -> None:
    page.goto(f"{base_url}/experiments/{seeded.experiment_id}{query}")
    expect(page.get_by_role("heading", level=1)).to_have_text(seeded.name)


@pytest.mark.parametrize(
    ("filter_string", "order"),
    [
        ("metrics.acc > 0.7", None),
        ("params.lr = '0.01' and tags.team = 'vision'", None),
        ("attributes.status = 'FAILED'", None),
        ("", ("acc", "metrics.acc DESC")),
    ],
)
def test_filter_and_sort_match_the_grpc_search(
    page: Page,
    base_url: str,
    tracking_server: LocalServer,
    seeded: Seeded,
    shot: object,
    filter_string: str,
    order: tuple[str, str] | None,
) -> None:
    open_runs(page, base_url, seeded, "?cols=attr:run_name,attr:status,param:lr,metric:acc,tag:team")
    if filter_string:
        box = page.get_by_role("combobox", name="Filter runs")
        box.fill(filter_string)
        box.press("Escape")
        page.get_by_role("button", name="Apply filter").click()
    order_by: list[str] = []
    if order:
        header = page.get_by_role("columnheader", name=re.compile(f"^{order[0]}"))
        header.get_by_role("button", name=order[0]).click()  # first click: descending
        expect(header).to_have_attribute("aria-sort", "descending")
        order_by = [order[1]]
    expected = grpc_names(tracking_server, seeded, filter_string, order_by)
    assert expected, "the filter should match some runs"
    expect(page.get_by_role("grid", name="Runs")).to_have_attribute("aria-busy", "false")
    page.wait_for_function(
        "n => document.querySelectorAll('[role=grid] a[href^=\"/runs/\"]').length === n", arg=len(expected)
    )
    assert run_names(page) == expected
    assert ("filter=" in page.url) == bool(filter_string)
    shot(page, "filtered" if filter_string else "sorted")


def test_bad_filter_shows_the_parser_error_at_its_column(
    page: Page, base_url: str, seeded: Seeded, shot: object
) -> None:
    open_runs(page, base_url, seeded)
    box = page.get_by_role("combobox", name="Filter runs")
    box.fill("metrics.acc >> 1")
    box.press("Escape")
    box.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("at column 14")
    # The caret under the text points at the offending character.
    caret = alert.locator("pre").inner_text().splitlines()
    assert caret[0] == "metrics.acc >> 1"
    assert caret[1].index("^") == 13
    expect(box).to_have_attribute("aria-invalid", "true")
    shot(page, "error")


def test_filter_box_completes_keys(page: Page, base_url: str, seeded: Seeded) -> None:
    open_runs(page, base_url, seeded)
    box = page.get_by_role("combobox", name="Filter runs")
    box.press_sequentially("params.o")
    options = page.get_by_role("listbox", name="Filter keys").get_by_role("option")
    expect(options).to_have_text(["params.optimizer"])
    box.press("Tab")
    expect(box).to_have_value("params.optimizer")


def test_group_by_param_shows_groups_with_aggregates(
    page: Page, base_url: str, seeded: Seeded, shot: object
) -> None:
    open_runs(page, base_url, seeded, "?cols=attr:run_name,param:lr,metric:acc")
    page.get_by_label("Group by").select_option(label="optimizer")
    grid = page.get_by_role("grid", name="Runs")
    groups = grid.get_by_role("button", name=re.compile(r"^▾ (adam|sgd) \(\d+\)$"))
    expect(groups).to_have_count(2)
    # Each group row shows the mean and [min, max] of acc over its runs.
    expect(grid.get_by_role("row", name=re.compile("group adam"))).to_contain_text(
        re.compile(r"\[0\.5, 0\.9\]")
    )
    assert "group=param%3Aoptimizer" in page.url or "group=param:optimizer" in page.url
    shot(page, "grouped")


def test_nested_runs_expand_under_their_parent(page: Page, base_url: str, seeded: Seeded) -> None:
    open_runs(page, base_url, seeded)
    grid = page.get_by_role("grid", name="Runs")
    expect(grid.get_by_role("link", name="sweep-child-0")).to_have_count(0)
    grid.get_by_role("button", name="Show nested runs of sweep-parent").click()
    expect(grid.get_by_role("link", name="sweep-child-0")).to_be_visible()
    expect(grid.get_by_role("link", name="sweep-child-1")).to_be_visible()
    assert f"open={seeded.parent_run}" in page.url


def test_column_picker_adds_metric_summaries(page: Page, base_url: str, seeded: Seeded) -> None:
    open_runs(page, base_url, seeded)
    page.get_by_role("button", name=re.compile(r"^Columns")).click()
    dialog = page.get_by_role("dialog", name="Choose columns")
    dialog.get_by_role("group", name="Metric loss").get_by_label("min").check()
    dialog.get_by_role("checkbox", name="lr", exact=True).check()
    dialog.get_by_role("button", name="Done").click()
    expect(page.get_by_role("columnheader", name="loss (min)")).to_be_visible()
    expect(page.get_by_role("columnheader", name="lr")).to_be_visible()
    assert "metric%3Aloss%3Amin" in page.url or "metric:loss:min" in page.url


def test_view_state_survives_a_reload(page: Page, base_url: str, seeded: Seeded) -> None:
    open_runs(
        page,
        base_url,
        seeded,
        "?filter=params.lr+%3D+%270.1%27&sort=-metric%3Aacc&cols=attr:run_name,metric:acc",
    )
    expect(page.get_by_role("combobox", name="Filter runs")).to_have_value("params.lr = '0.1'")
    expect(page.get_by_role("columnheader", name=re.compile("^acc"))).to_have_attribute(
        "aria-sort", "descending"
    )
    names = run_names(page)
    page.reload()
    assert run_names(page) == names


def test_select_three_runs_to_compare(page: Page, base_url: str, seeded: Seeded, shot: object) -> None:
    open_runs(page, base_url, seeded)
    grid = page.get_by_role("grid", name="Runs")
    for name in ("run-00", "run-01", "run-02"):
        grid.get_by_role("checkbox", name=f"Select run {name}").check()
    page.get_by_role("button", name="Compare 3 selected").click()
    expect(page.get_by_role("heading", name="Compare 3 runs")).to_be_visible()
    table = page.get_by_role("table", name="Differences")
    expect(table.get_by_role("columnheader")).to_have_count(4)
    shot(page, "compare", full_page=True)


def test_keyboard_moves_through_rows_and_opens_a_run(page: Page, base_url: str, seeded: Seeded) -> None:
    open_runs(page, base_url, seeded)
    grid = page.get_by_role("grid", name="Runs")
    first = grid.get_by_role("row").nth(1)
    first.focus()
    page.keyboard.press("ArrowDown")
    second_name = grid.get_by_role("row").nth(2).locator("a").first.inner_text()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text(second_name)
