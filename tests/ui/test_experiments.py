"""Experiments: list and search, create, rename, delete and restore; several in one runs table."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

import tracklane
from tests.ui._data import Seeded
from tracklane.testing import LocalServer


def test_create_rename_delete_restore(
    page: Page, base_url: str, tracking_server: LocalServer, unique: str, shot: object
) -> None:
    page.goto(base_url)
    page.get_by_label("New experiment").fill(f"exp-{unique}")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"exp-{unique}")

    page.goto(f"{base_url}/?q={unique}")
    table = page.get_by_role("table", name="Experiments")
    expect(table.get_by_role("link", name=f"exp-{unique}")).to_be_visible()
    shot(page, "list")
    table.get_by_role("button", name=f"Rename exp-{unique}").click()
    table.get_by_label(f"New name for exp-{unique}").fill(f"renamed-{unique}")
    table.get_by_role("button", name="Save name").click()
    expect(table.get_by_role("link", name=f"renamed-{unique}")).to_be_visible()
    with tracklane.Client(tracking_server.uri) as client:
        assert client.get_experiment_by_name(f"renamed-{unique}") is not None

    page.goto(f"{base_url}/?q={unique}")
    page.once("dialog", lambda d: d.accept())
    table.get_by_role("button", name=f"Delete renamed-{unique}").click()
    expect(table.get_by_role("link", name=f"renamed-{unique}")).to_have_count(0)
    page.get_by_label("Deleted experiments").check()
    table.get_by_role("button", name=f"Restore renamed-{unique}").click()
    expect(table.get_by_role("link", name=f"renamed-{unique}")).to_have_count(0)
    page.get_by_label("Deleted experiments").uncheck()
    expect(table.get_by_role("link", name=f"renamed-{unique}")).to_be_visible()


def test_runs_of_several_experiments_in_one_table(
    page: Page, base_url: str, tracking_server: LocalServer, seeded: Seeded, unique: str
) -> None:
    with tracklane.Client(tracking_server.uri) as client:
        other = client.create_experiment(f"other-{unique}")
        client.create_run(other, run_name=f"other-run-{unique}")
    page.goto(f"{base_url}/?q=")
    table = page.get_by_role("table", name="Experiments")
    table.get_by_role("checkbox", name=f"Select experiment {seeded.name}").check()
    table.get_by_role("checkbox", name=f"Select experiment other-{unique}").check()
    page.get_by_role("button", name=re.compile("^Show runs of 2 selected")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        re.compile(f"{seeded.name} \\+ other-{unique}|other-{unique} \\+ {seeded.name}")
    )
    grid = page.get_by_role("grid", name="Runs")
    expect(grid.get_by_role("link", name=f"other-run-{unique}")).to_be_visible()
    expect(grid.get_by_role("link", name="run-00")).to_be_visible()
