"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fluent_helpers import fluent_on
from tracklane.testing import LocalServer


@pytest.fixture
def fl(tracking_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fluent module on the backend's server with a private metric spool; state reset around the test."""
    with fluent_on(tracking_server.uri, tmp_path / "spool", monkeypatch) as module:
        yield module
