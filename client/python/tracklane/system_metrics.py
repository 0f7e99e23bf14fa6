"""System metrics: CPU, memory, disk, network and NVIDIA GPUs, sampled in the background as ``system/...``.

    with tracklane.start_run(log_system_metrics=True):
        train()

or for every run: ``tracklane.enable_system_metrics_logging()`` or
``TRACKLANE_ENABLE_SYSTEM_METRICS_LOGGING=true``.
The names are MLflow's (``system/cpu_utilization_percentage``, ``system/gpu_0_utilization_percentage``...),
so dashboards built for one read the other. Needs psutil (the ``system-metrics`` extra); GPUs are read
through NVML (``nvidia-ml-py``) when it and a driver are present, and skipped otherwise.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tracklane.client import Client
from tracklane.entities import Metric

__all__ = [
    "disable_system_metrics_logging",
    "enable_system_metrics_logging",
    "set_system_metrics_sampling_interval",
]

ENABLE_ENV = "TRACKLANE_ENABLE_SYSTEM_METRICS_LOGGING"
INTERVAL_ENV = "TRACKLANE_SYSTEM_METRICS_SAMPLING_INTERVAL"
DEFAULT_INTERVAL_SECONDS = 10.0
MB = 1024 * 1024

_log = logging.getLogger(__name__)
_settings: dict[str, Any] = {}  # set by the functions below; the environment fills what is unset


def enable_system_metrics_logging() -> None:
    """Logs system metrics for every run started from now on (unless ``log_system_metrics=False``)."""
    _settings["enabled"] = True


def disable_system_metrics_logging() -> None:
    """Stops logging system metrics for runs started from now on (unless ``log_system_metrics=True``)."""
    _settings["enabled"] = False


def set_system_metrics_sampling_interval(seconds: float | None) -> None:
    """Seconds between samples; None goes back to ``$TRACKLANE_SYSTEM_METRICS_SAMPLING_INTERVAL``, else 10."""
    if seconds is not None and not seconds > 0:
        raise ValueError(f"the sampling interval must be positive, got {seconds}")
    _settings["interval"] = seconds


def wanted(log_system_metrics: bool | None) -> bool:
    """Whether a run started with this argument logs system metrics."""
    if log_system_metrics is not None:
        return log_system_metrics
    if "enabled" in _settings:
        return bool(_settings["enabled"])
    return os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sampling_interval() -> float:
    if _settings.get("interval") is not None:
        return float(_settings["interval"])
    raw = os.environ.get(INTERVAL_ENV)
    return float(raw) if raw else DEFAULT_INTERVAL_SECONDS


def require_psutil() -> None:
    """Raises ImportError naming the extra when psutil is missing (checked before a run is created)."""
    try:
        import psutil  # noqa: F401
    except ImportError as err:
        raise ImportError("log_system_metrics needs psutil: pip install 'tracklane[system-metrics]'") from err


class _Sampler:
    """Reads one sample of every system metric; network counters are totals since the sampler began."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement window
        net = psutil.net_io_counters()
        self._net_start = (net.bytes_recv, net.bytes_sent)
        self._gpus = _open_gpus()

    def sample(self) -> dict[str, float]:
        ps = self._psutil
        memory = ps.virtual_memory()
        disk = ps.disk_usage(os.path.abspath(os.sep))
        net = ps.net_io_counters()
        values = {
            "cpu_utilization_percentage": ps.cpu_percent(interval=None),
            "system_memory_usage_megabytes": memory.used / MB,
            "system_memory_usage_percentage": memory.percent,
            "disk_usage_percentage": disk.percent,
            "disk_usage_megabytes": disk.used / MB,
            "disk_available_megabytes": disk.free / MB,
            "network_receive_megabytes": (net.bytes_recv - self._net_start[0]) / MB,
            "network_transmit_megabytes": (net.bytes_sent - self._net_start[1]) / MB,
        }
        for i, read in enumerate(self._gpus):
            for name, value in read().items():
                values[f"gpu_{i}_{name}"] = value
        return values


def _open_gpus() -> list[Callable[[], dict[str, float]]]:
    """One reader per NVIDIA GPU; none without NVML or a driver (the common case on CPU machines)."""
    try:
        import pynvml  # type: ignore[import-untyped]
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except pynvml.NVMLError:
        return []

    def reader(handle: Any) -> Callable[[], dict[str, float]]:
        def read() -> dict[str, float]:
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            return {
                "utilization_percentage": float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                "memory_usage_percentage": 100.0 * memory.used / memory.total,
                "memory_usage_megabytes": memory.used / MB,
                "power_usage_watts": pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
            }

        return read

    return [reader(h) for h in handles]


class SystemMetricsMonitor:
    """A daemon thread logging a sample every ``interval`` seconds to one run until stopped."""

    def __init__(self, run_id: str, tracking_uri: str, interval: float) -> None:
        self.run_id = run_id
        self.interval = interval
        self._tracking_uri = tracking_uri
        self._stop = threading.Event()
        self._sampler = _Sampler()
        self._thread = threading.Thread(
            target=self._run, name=f"tracklane-system-metrics-{run_id[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops sampling; the sample being sent, if any, is delivered first."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        client = Client(self._tracking_uri)
        step = 0
        try:
            while not self._stop.wait(self.interval):
                now = int(time.time() * 1000)
                metrics = [
                    Metric(f"system/{name}", float(value), step, now)
                    for name, value in self._sampler.sample().items()
                ]
                try:
                    client.log_batch(self.run_id, metrics=metrics)
                except Exception as err:  # a lost sample must never break training: log and go on
                    _log.warning("system metrics for run %s not logged: %s", self.run_id, err)
                step += 1
        finally:
            client.close()


_monitors: dict[str, SystemMetricsMonitor] = {}
_monitors_lock = threading.Lock()


def start_monitor(run_id: str, tracking_uri: str) -> None:
    """Starts sampling for ``run_id`` (once: a resumed run that is already sampled keeps its monitor)."""
    with _monitors_lock:
        if run_id in _monitors:
            return
        monitor = SystemMetricsMonitor(run_id, tracking_uri, sampling_interval())
        _monitors[run_id] = monitor
    monitor.start()


def stop_monitor(run_id: str) -> None:
    """Stops sampling for ``run_id``; nothing happens when it was not sampled."""
    with _monitors_lock:
        monitor = _monitors.pop(run_id, None)
    if monitor is not None:
        monitor.stop()


def _forget_in_child() -> None:
    # Threads do not survive fork: the parent's monitors keep running in the parent only.
    global _monitors_lock
    _monitors.clear()
    _monitors_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
