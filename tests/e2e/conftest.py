"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tracklane import fluent
from tracklane.testing import LocalServer


@pytest.fixture
def fl(tracking_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fluent module pointed at the backend's server, with clean global state before and after."""
    for name in ("TRACKLANE_EXPERIMENT_NAME", "TRACKLANE_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    fluent._reset()
    fluent.set_tracking_uri(tracking_server.uri)
    yield fluent
    while fluent.active_run() is not None:
        fluent.end_run()
    fluent._reset()
