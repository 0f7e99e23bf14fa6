"""The model registry: list, model page, moving an alias and transitioning a stage, history."""

from __future__ import annotations

from playwright.sync_api import Page, expect

import tracklane
from tests.ui._data import Seeded
from tracklane.testing import LocalServer


def test_models_list_and_search(page: Page, base_url: str, seeded: Seeded, shot: object) -> None:
    page.goto(f"{base_url}/models")
    search = page.get_by_role("searchbox", name="Search models")
    search.fill(seeded.model_name)
    search.press("Enter")
    table = page.get_by_role("table", name="Registered models")
    expect(table.get_by_role("link")).to_have_text([seeded.model_name])
    expect(table).to_contain_text("@champion → v1")
    shot(page, "models")


def test_move_alias_and_transition_stage(
    page: Page, base_url: str, tracking_server: LocalServer, seeded: Seeded, shot: object
) -> None:
    name = seeded.model_name
    page.goto(f"{base_url}/models/{name}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    aliases = page.get_by_role("form", name="Set alias")
    aliases.get_by_label("Alias").fill("champion")
    aliases.get_by_label("Version").select_option("2")
    aliases.get_by_role("button", name="Set alias").click()
    expect(
        page.get_by_role("table", name="Aliases").get_by_role("row", name="@champion Version 2")
    ).to_be_visible()

    stage = page.get_by_role("form", name="Stage of version 2")
    stage.get_by_label("Stage of version 2").select_option(label="Staging")
    stage.get_by_role("button", name="Transition").click()
    versions = page.get_by_role("table", name="Versions")
    expect(versions.get_by_role("row", name="Version 2 Staging @champion", exact=False)).to_be_visible()
    shot(page, "model", full_page=True)

    with tracklane.Client(tracking_server.uri) as client:
        assert client.get_model_version_by_alias(name, "champion").version == 2
        assert client.get_model_version(name, 2).current_stage == "Staging"

    page.get_by_role("link", name="Version 2").first.click()
    timeline = page.get_by_role("list", name="Version history")
    expect(timeline).to_contain_text("Alias @champion moved from version 1 to 2")
    expect(timeline).to_contain_text("Stage changed from None to Staging")
    expect(page.get_by_role("table", name="Signature Inputs")).to_be_visible()
    shot(page, "version", full_page=True)
