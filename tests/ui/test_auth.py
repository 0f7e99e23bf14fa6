"""Auth on: the sign-in page takes a token; a user without READ sees neither the experiment nor
its runs (not in lists, not in search, not by URL), while its owner does."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.auth_helpers import AuthServer


def sign_in(page: Page, base_url: str, token: str) -> None:
    page.goto(base_url)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()


def test_a_user_without_read_sees_neither_the_experiment_nor_its_runs(
    page: Page, auth_server: AuthServer, shot: object
) -> None:
    base_url = auth_server.local.http_url
    owner, stranger = auth_server.create_user("ui-owner"), auth_server.create_user("ui-stranger")
    secret = f"secret-{owner.name}"
    with owner.client() as client:
        experiment_id = client.create_experiment(secret)
        run_id = client.create_run(experiment_id, run_name="hidden-run").info.run_id
    with stranger.client() as client:
        client.create_experiment(f"mine-{stranger.name}")

    page.goto(base_url)
    page.get_by_label("API token").fill("tlk_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    shot(page, "sign-in")

    sign_in(page, base_url, stranger.token)
    expect(page.get_by_text(f"Signed in as {stranger.name}")).to_be_visible()
    table = page.get_by_role("table", name="Experiments")
    expect(table.get_by_role("link", name=f"mine-{stranger.name}")).to_be_visible()
    expect(table.get_by_role("link", name=secret)).to_have_count(0)
    search = page.get_by_role("searchbox", name="Search experiments")
    search.fill("secret")
    search.press("Enter")
    expect(page.get_by_text("No experiments match.")).to_be_visible()
    shot(page, "stranger-list")

    page.goto(f"{base_url}/experiments/{experiment_id}")
    expect(page.get_by_role("alert").first).to_contain_text("permission")
    expect(page.get_by_role("link", name="hidden-run")).to_have_count(0)
    expect(page.get_by_text(secret)).to_have_count(0)
    page.goto(f"{base_url}/runs/{run_id}")
    expect(page.get_by_role("alert")).to_contain_text("permission")
    expect(page.get_by_text("hidden-run")).to_have_count(0)
    shot(page, "stranger-run")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, base_url, owner.token)
    page.goto(f"{base_url}/experiments/{experiment_id}")
    expect(page.get_by_role("grid", name="Runs").get_by_role("link", name="hidden-run")).to_be_visible()
