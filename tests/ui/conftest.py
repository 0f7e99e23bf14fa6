"""ui: the web UI in a real browser (Debian's Chromium driven by Playwright) against a real server.

Every test runs on both backends (SQLite + folder, PostgreSQL + MinIO) through the session's
``tracking_server``; auth tests use ``auth_server``. Tests find things by role and visible text,
as a person (or a screen reader) would. Each test saves screenshots of what it checked into
``$TRACKLANE_UI_SCREENSHOTS`` (default: a folder under pytest's tmp dir, printed at the end).
Without Chromium the tests skip; with TRACKLANE_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.conftest import REQUIRE_SERVICES
from tests.ui._data import Seeded, seed_experiment
from tests.ui.chromium import CHROMIUM, CHROMIUM_FLAGS
from tracklane.testing import LocalServer

VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Debian's Chromium, headless, with a fresh profile (Playwright's launch makes a new one).

    Package scope: Playwright's sync API keeps an asyncio loop running in the main thread while it is
    open, and later tests that call asyncio.run would fail beside it.
    """
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set TRACKLANE_CHROMIUM)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; TRACKLANE_REQUIRE_SERVICES=1 requires it")
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRE_SERVICES:
            pytest.fail("playwright is not installed (pip install -e '.[dev]')")
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots."""
    chosen = os.environ.get("TRACKLANE_UI_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Shots:
    """Saves full-window screenshots named after the test and the backend."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.folder = folder
        self.prefix = prefix
        self.saved: list[Path] = []

    def __call__(self, page: object, name: str, *, full_page: bool = False) -> Path:
        path = self.folder / f"{self.prefix}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)  # type: ignore[attr-defined]
        self.saved.append(path)
        return path


@pytest.fixture
def shot(request: pytest.FixtureRequest, screenshots: Path) -> Shots:
    backend = re.search(r"\[(\w+)", request.node.name)
    return Shots(screenshots, f"{backend.group(1) if backend else 'ui'}-{request.node.originalname}")


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh context (no cookies) at 1280x800 in the dark theme. Script errors and CSP
    violations fail the test: the page must run under the server's strict policy."""
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark")  # type: ignore[attr-defined]
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    tab.on(
        "console",
        lambda m: m.type == "error" and "Content Security Policy" in m.text and errors.append(m.text),
    )
    yield tab
    context.close()
    assert not errors, errors


@pytest.fixture
def base_url(tracking_server: LocalServer) -> str:
    return tracking_server.http_url


@pytest.fixture(scope="session")
def seeded(tracking_server: LocalServer) -> Seeded:
    """One seeded experiment per backend, shared by the read-only tests."""
    with tracklane.Client(tracking_server.uri) as client:
        return seed_experiment(client, f"ui-{uuid.uuid4().hex[:8]}")
