"""Prometheus metrics of the model server: requests, latency, errors, batch sizes.

With several worker processes every worker writes its samples to files in one folder
(``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor before the workers start) and ``/metrics``
adds them up, whichever worker answers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

__all__ = ["MULTIPROC_ENV", "Metrics"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Model calls run from ~50 µs (a linear model) to seconds (a large ensemble over many rows).
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's counters and histograms, registered once per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tracklane_serving_requests",
            "Scoring requests answered, by protocol endpoint and status.",
            ("endpoint", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "tracklane_serving_request_duration_seconds",
            "Time from a scoring request's arrival to its answer.",
            ("endpoint",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "tracklane_serving_errors",
            "Scoring requests that failed, by endpoint and error code.",
            ("endpoint", "error_code"),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "tracklane_serving_batch_size",
            "Requests scored together in one model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )

    def observe(self, endpoint: str, status: str, seconds: float, error_code: str = "") -> None:
        """Records one answered request."""
        self.requests.labels(endpoint, status).inc()
        self.latency.labels(endpoint).observe(seconds)
        if error_code:
            self.errors.labels(endpoint, error_code).inc()

    def exposition(self) -> bytes:
        """The text format, added up over every worker when they share a folder."""
        folder = os.environ.get(MULTIPROC_ENV)
        if folder:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
            return bytes(generate_latest(registry))
        return bytes(generate_latest(self.registry))
