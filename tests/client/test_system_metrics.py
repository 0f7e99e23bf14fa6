"""System metrics: start_run(log_system_metrics=True) samples the machine into ``system/...`` metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import tracklane
from tracklane import system_metrics

EXPECTED = {
    "system/cpu_utilization_percentage",
    "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage",
    "system/disk_usage_percentage",
    "system/disk_usage_megabytes",
    "system/disk_available_megabytes",
    "system/network_receive_megabytes",
    "system/network_transmit_megabytes",
}


@pytest.fixture(autouse=True)
def fast_sampling(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(system_metrics.ENABLE_ENV, raising=False)
    system_metrics.set_system_metrics_sampling_interval(0.1)
    yield
    system_metrics._settings.clear()


def wait_for_samples(
    client: tracklane.Client, run_id: str, count: int, timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        metrics = client.get_run(run_id).data.latest_metrics
        if set(metrics) >= EXPECTED and all(m.step >= count - 1 for m in metrics.values()):
            return dict(metrics)
        assert time.monotonic() < deadline, f"no {count} samples after {timeout} s: {sorted(metrics)}"
        time.sleep(0.05)


def test_samples_while_active_and_stops_at_end(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run(log_system_metrics=True) as run:
        latest = wait_for_samples(client, run.info.run_id, count=3)
    run_id = run.info.run_id
    assert set(latest) == EXPECTED  # no GPU on this machine: no gpu_ keys, and nothing else
    assert 0.0 <= latest["system/cpu_utilization_percentage"].value <= 100.0
    total_mb = psutil.virtual_memory().total / system_metrics.MB
    assert 0.0 < latest["system/system_memory_usage_megabytes"].value <= total_mb
    assert latest["system/disk_available_megabytes"].value > 0.0
    assert latest["system/network_receive_megabytes"].value >= 0.0
    history = client.get_metric_history(run_id, "system/cpu_utilization_percentage")
    assert list(history.steps) == list(range(len(history)))  # one point per sample, in order
    # Ended: the monitor stops, so no point arrives after end_run returned.
    time.sleep(0.5)
    assert len(client.get_metric_history(run_id, "system/cpu_utilization_percentage")) == len(history)


def test_off_by_default_and_enabled_globally(
    fl: Any, client: tracklane.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fl.start_run() as quiet:
        fl.log_metric("loss", 1.0)
        time.sleep(0.4)  # several sampling intervals
    assert set(client.get_run(quiet.info.run_id).data.latest_metrics) == {"loss"}

    monkeypatch.setenv(system_metrics.ENABLE_ENV, "true")
    with fl.start_run() as sampled:
        wait_for_samples(client, sampled.info.run_id, count=1)
    with fl.start_run(log_system_metrics=False) as opted_out:
        time.sleep(0.4)
    assert client.get_run(opted_out.info.run_id).data.latest_metrics == {}

    monkeypatch.delenv(system_metrics.ENABLE_ENV)
    tracklane.enable_system_metrics_logging()
    with fl.start_run() as enabled:
        wait_for_samples(client, enabled.info.run_id, count=1)
    tracklane.disable_system_metrics_logging()


def test_nested_runs_are_sampled_separately(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run(log_system_metrics=True) as parent:
        with fl.start_run(nested=True, log_system_metrics=True) as child:
            wait_for_samples(client, child.info.run_id, count=2)
        child_points = len(client.get_metric_history(child.info.run_id, "system/disk_usage_percentage"))
        wait_for_samples(client, parent.info.run_id, count=child_points + 2)  # the parent goes on
    time.sleep(0.3)
    assert len(client.get_metric_history(child.info.run_id, "system/disk_usage_percentage")) == child_points


def test_bad_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        tracklane.set_system_metrics_sampling_interval(0)
