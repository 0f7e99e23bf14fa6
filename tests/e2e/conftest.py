"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracklane import _metric_sender, fluent
from tracklane.testing import LocalServer


@pytest.fixture
def fl(tracking_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fluent module on the backend's server with a private metric spool; state reset around the test."""
    for name in ("TRACKLANE_EXPERIMENT_NAME", "TRACKLANE_EXPERIMENT_ID", "TRACKLANE_ARTIFACT_TRANSFER"):
        monkeypatch.delenv(name, raising=False)
    saved = _metric_sender.current_config()
    fluent._reset()
    fluent.configure_metrics(spool_dir=tmp_path / "spool", flush_timeout=60)
    fluent.set_tracking_uri(tracking_server.uri)
    yield fluent
    while fluent.active_run() is not None:
        fluent.end_run()
    fluent._reset()
    _metric_sender._config = saved
