"""Which calls the client's channel retries on UNAVAILABLE: reads and writes with a request_id."""

from __future__ import annotations

import json

from tracklane import _channel


def _retried() -> set[str]:
    config = json.loads(_channel._SERVICE_CONFIG)
    (policy,) = config["methodConfig"]
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    return {f"{n['service'].rsplit('.', 1)[-1]}/{n['method']}" for n in policy["name"]}


def test_reads_and_idempotent_creates_are_retried() -> None:
    retried = _retried()
    for method in (
        "TrackingService/GetRun",
        "TrackingService/SearchRuns",
        "RegistryService/GetModelVersion",
        "TrackingService/CreateRun",  # request_id: a retry returns the first run
        "RegistryService/CreateModelVersion",  # request_id: a retry returns the first version
    ):
        assert method in retried, method


def test_writes_without_a_request_id_and_streams_are_not() -> None:
    retried = _retried()
    for method in (
        "TrackingService/LogBatch",  # would store a batch twice
        "TrackingService/StreamMetrics",
        "TrackingService/WatchRun",
        "ArtifactService/DownloadArtifact",
        "RegistryService/SetRegisteredModelAlias",
        "TrackingService/CreateExperiment",
    ):
        assert method not in retried, method
