"""The fluent module pointed at one test server, with a private metric spool and clean state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from tracklane import fluent
from tracklane._metrics import config as _metric_config

# Variables that would point a test's fluent calls somewhere else.
_ENV = ("TRACKLANE_EXPERIMENT_NAME", "TRACKLANE_EXPERIMENT_ID", "TRACKLANE_ARTIFACT_TRANSFER")


@contextmanager
def fluent_on(
    uri: str, spool_dir: Path, monkeypatch: pytest.MonkeyPatch, *also_unset: str
) -> Iterator[ModuleType]:
    """Fluent state reset around the block; runs left active are ended, the metric config restored."""
    for name in (*_ENV, *also_unset):
        monkeypatch.delenv(name, raising=False)
    saved = _metric_config.current_config()
    fluent._reset()
    fluent.configure_metrics(spool_dir=spool_dir, flush_timeout=60)
    fluent.set_tracking_uri(uri)
    try:
        yield fluent
    finally:
        while fluent.active_run() is not None:
            fluent.end_run()
        fluent._reset()
        _metric_config._config = saved
