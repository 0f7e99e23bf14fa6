from collections.abc import Callable
from typing import Any

class PointBuffer:
    """Columns of metric points one thread appends to and the sender takes (see _native.c)."""

    def __init__(self, segment_points: int) -> None: ...
    @property
    def key_ids(self) -> dict[str, int]: ...
    @property
    def sealed_count(self) -> int: ...
    def log(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None, /
    ) -> None: ...
    def append(self, index: int, value: float, step: int, timestamp_ms: int, /) -> None: ...
    def seal(self) -> None: ...
    def push(self, item: Any, /) -> None: ...
    def take(self, *, sealed_only: bool = False) -> list[Any]: ...
    def pending(self) -> bool: ...

class MetricLogger:
    """Fluent log_metric's fast path in C; calls ``slow`` for everything but the plain case.

    Contract: ``runs`` is the threading.local whose ``stack`` lists this thread's active runs, the
    top run's ``_metrics`` its PointBuffer (fluent/state.py hands it over); ``fast_calls`` counts
    the calls that took the fast path.
    """

    __name__: str
    __qualname__: str
    runs: Any
    @property
    def fast_calls(self) -> int: ...
    def __init__(self, slow: Callable[..., None]) -> None: ...
    def __call__(
        self,
        key: str,
        value: float,
        step: int | None = None,
        timestamp: int | None = None,
        *,
        run_id: str | None = None,
    ) -> None: ...
