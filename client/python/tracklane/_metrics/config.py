"""How metrics are buffered and sent: one MetricsConfig, from ``configure_metrics`` over the environment.

Environment (``configure_metrics`` wins):
  TRACKLANE_METRICS_FLUSH_POINTS        points per batch (and per sender wake-up), default 10000
  TRACKLANE_METRICS_FLUSH_INTERVAL_MS   send what is buffered at least this often, default 100
  TRACKLANE_METRICS_MAX_INFLIGHT        unacknowledged batches at most, default 16
  TRACKLANE_METRICS_MAX_MEMORY_POINTS   points waiting in memory before they spill, default 2000000
  TRACKLANE_METRICS_SPILL_AFTER_MS      spill when no ack came for this long, default 2000
  TRACKLANE_METRICS_FLUSH_TIMEOUT       seconds end_run and exit wait for acks, default 60
  TRACKLANE_SPOOL_DIR                   spool folder, default ~/.cache/tracklane/spool
  TRACKLANE_SPOOL_MAX_BYTES             cap of one process's spool, default 4 GiB
  TRACKLANE_METRICS_REPLAY_SPOOL        replay dead writers' spools (0 to leave them to sync), default 1
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from tracklane._metrics.spool import spool_dir

__all__ = ["MetricsConfig", "configure", "current_config"]

log = logging.getLogger("tracklane.metrics")


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, raw, default)
        return default


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """How metrics are buffered and sent; see the module docstring for the variables."""

    flush_points: int = 10_000
    flush_interval: float = 0.1
    max_inflight: int = 16
    max_memory_points: int = 2_000_000
    spill_after: float = 2.0
    flush_timeout: float = 60.0
    spool_dir: Path = dataclasses.field(default_factory=spool_dir)
    spool_max_bytes: int = 4 << 30
    #: Largest batch sent (array logging can hand over millions of points at once).
    max_batch_points: int = 100_000
    #: Replay spools that dead writers left for the same tracking URI, in the background.
    replay_spool: bool = True

    @classmethod
    def from_env(cls) -> MetricsConfig:
        return cls(
            flush_points=int(_env_number("TRACKLANE_METRICS_FLUSH_POINTS", 10_000)),
            flush_interval=_env_number("TRACKLANE_METRICS_FLUSH_INTERVAL_MS", 100) / 1000,
            max_inflight=int(_env_number("TRACKLANE_METRICS_MAX_INFLIGHT", 16)),
            max_memory_points=int(_env_number("TRACKLANE_METRICS_MAX_MEMORY_POINTS", 2_000_000)),
            spill_after=_env_number("TRACKLANE_METRICS_SPILL_AFTER_MS", 2000) / 1000,
            flush_timeout=_env_number("TRACKLANE_METRICS_FLUSH_TIMEOUT", 60),
            spool_dir=spool_dir(),
            spool_max_bytes=int(_env_number("TRACKLANE_SPOOL_MAX_BYTES", 4 << 30)),
            replay_spool=bool(_env_number("TRACKLANE_METRICS_REPLAY_SPOOL", 1)),
        )


_config: MetricsConfig | None = None


def current_config() -> MetricsConfig:
    """The configuration new senders use: ``configure`` calls over the environment."""
    global _config
    if _config is None:
        _config = MetricsConfig.from_env()
    return _config


def configure(**changes: Any) -> MetricsConfig:
    """Changes the configuration for senders created afterwards; returns the new one."""
    global _config
    if "spool_dir" in changes and changes["spool_dir"] is not None:
        changes["spool_dir"] = Path(changes["spool_dir"]).expanduser()
    _config = dataclasses.replace(current_config(), **{k: v for k, v in changes.items() if v is not None})
    return _config
