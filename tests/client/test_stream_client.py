"""Streaming metrics from the client side against a real server on each backend.

The fluent API buffers and streams; every test reads the full history back through the unary
GetMetricHistory and compares it with what was logged: nothing lost, nothing twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracklane
from tracklane._metrics.sender import MetricsConfig, MetricSender
from tracklane.cli.sync import sync_spool
from tracklane.exceptions import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from tracklane.testing import LocalServer

Series = dict[str, tuple[list[int], list[float]]]


def history(client: tracklane.Client, run_id: str, keys: list[str]) -> Series:
    out: Series = {}
    for key in keys:
        series = client.get_metric_history(run_id, key)
        out[key] = (list(series.steps), list(series.values))
    return out


def test_log_metric_loop_is_stored_exactly(fl: Any, client: tracklane.Client) -> None:
    keys = ["loss", "acc", "lr"]
    expected: Series = {k: ([], []) for k in keys}
    with fl.start_run() as run:
        for step in range(20_000):
            for j, key in enumerate(keys):
                value = step * 0.25 + j
                fl.log_metric(key, value, step=step)
                expected[key][0].append(step)
                expected[key][1].append(value)
    # The with block's end flushed: everything is there as soon as end_run returns.
    assert history(client, run.info.run_id, keys) == expected
    assert client.get_run(run.info.run_id).data.metrics["loss"] == 19_999 * 0.25


def test_log_metrics_and_arrays_and_timestamps(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as run:
        fl.log_metrics({"a": 1.0, "b": 2.0}, step=3, timestamp=1_700_000_000_123)
        fl.log_metric_array("curve", np.linspace(0, 1, 50_001), steps=np.arange(10, 50_011))
        fl.log_metric_array("default_steps", [5.0, 6.0, 7.0], timestamps=1_700_000_000_000)
        fl.log_metric("nan", float("nan"), step=1)
        fl.flush()
        series = client.get_metric_history(run.info.run_id, "a")
        assert (series.steps, series.values, series.timestamps) == ([3], [1.0], [1_700_000_000_123])
        curve = client.get_metric_history(run.info.run_id, "curve")
        assert curve.steps == list(range(10, 50_011))
        np.testing.assert_array_equal(curve.values, np.linspace(0, 1, 50_001))
        defaults = client.get_metric_history(run.info.run_id, "default_steps")
        assert defaults.steps == [0, 1, 2]
        assert defaults.timestamps == [1_700_000_000_000] * 3
        assert np.isnan(client.get_metric_history(run.info.run_id, "nan").values[0])
        with pytest.raises(InvalidArgument, match="steps"):
            fl.log_metric_array("x", [1.0, 2.0], steps=[1])


def test_bad_key_is_refused_at_the_call(fl: Any) -> None:
    with fl.start_run():
        with pytest.raises(InvalidArgument) as info:
            fl.log_metric("no!good", 1.0)
        assert info.value.field == "key"
        fl.log_metric("fine", 1.0)


def test_threads_and_several_runs(fl: Any, client: tracklane.Client) -> None:
    """Four threads with a run each, two of them also writing to one shared run."""
    shared = client.create_run("0").info.run_id
    results: dict[str, Series] = {}
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            own: Series = {"m": ([], [])}
            with fl.start_run() as run:
                for step in range(5_000):
                    fl.log_metric("m", step * index, step=step)
                    own["m"][0].append(step)
                    own["m"][1].append(float(step * index))
            results[run.info.run_id] = own
            if index < 2:
                with fl.start_run(run_id=shared):
                    for step in range(index * 10_000, index * 10_000 + 3_000):
                        fl.log_metric("shared", step, step=step)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run_id, expected in results.items():
        assert history(client, run_id, ["m"]) == expected
    steps = [*range(0, 3_000), *range(10_000, 13_000)]
    assert history(client, shared, ["shared"]) == {"shared": (steps, [float(s) for s in steps])}


def test_refusals_are_raised_from_flush(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as run:
        fl.log_metric("m", 1.0)
        fl.flush()
        client.delete_run(run.info.run_id)
        fl.log_metric("m", 2.0, step=1)
        with pytest.raises(FailedPrecondition, match="deleted"):
            fl.flush()
        fl.flush()  # reported once
        client.restore_run(run.info.run_id)
    assert history(client, run.info.run_id, ["m"]) == {"m": ([0], [1.0])}


def test_a_bad_step_is_refused_at_the_call_and_the_rest_stored(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as run:
        fl.log_metric("m", 1.0, step=1)
        with pytest.raises(InvalidArgument) as info:
            fl.log_metric("m", 2.0, step="two")
        assert info.value.field == "step"
        fl.log_metric("m", 3.0, step=3)
        fl.flush()
    assert history(client, run.info.run_id, ["m"]) == {"m": ([1, 3], [1.0, 3.0])}


def test_unknown_run_is_not_found(tracking_server: LocalServer, tmp_path: Path) -> None:
    sender = MetricSender(tracking_server.uri, MetricsConfig(spool_dir=tmp_path))
    try:
        sender.buffer("0123456789abcdef0123456789abcdef").log("m", 1.0, 0, None)
        with pytest.raises(NotFound):
            sender.flush(30)
    finally:
        sender.close(5)


FORKING_TRAINER = """
import os, sys
import tracklane

tracklane.set_tracking_uri(sys.argv[1])
with tracklane.start_run() as parent_run:
    tracklane.log_metric("m", 1.0, step=1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh writer and a run of its own
        code = 1
        try:
            with tracklane.start_run() as child_run:
                for step in range(1_000):
                    tracklane.log_metric("c", step, step=step)
            os.write(write, child_run.info.run_id.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    child_run_id = os.read(read, 100).decode()
    assert os.waitstatus_to_exitcode(status) == 0, status
    tracklane.log_metric("m", 2.0, step=2)
print(parent_run.info.run_id, child_run_id)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_streams_its_own_run(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    # A training process of its own, as users run it: this test process also hosts the server, whose
    # threads are always inside gRPC, and gRPC cannot make a fork of such a process safe.
    done = subprocess.run(
        [sys.executable, "-c", FORKING_TRAINER, tracking_server.uri],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TRACKLANE_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert done.returncode == 0, done.stderr
    parent_run_id, child_run_id = done.stdout.split()
    assert history(client, parent_run_id, ["m"]) == {"m": ([1, 2], [1.0, 2.0])}
    assert history(client, child_run_id, ["c"]) == {
        "c": (list(range(1_000)), [float(s) for s in range(1_000)])
    }


MANY_FORKS_TRAINER = """
import multiprocessing, os, sys, threading, time
from pathlib import Path
import tracklane

uri, forks, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
tracklane.set_tracking_uri(uri)
tracklane.configure_metrics(flush_points=500)  # small batches: the stream is always mid-flight


def child_run(tag):
    assert tracklane.active_run() is None  # nothing of the parent's state
    tracklane.flush()  # no sender yet: the parent's buffered points are not the child's to send
    with tracklane.start_run() as run:
        for step in range(100):
            tracklane.log_metric("c", step, step=step)
    (out / f"{tag}.child").write_text(run.info.run_id)


with tracklane.start_run() as run:
    run_id = run.info.run_id
    stop = threading.Event()
    logged = []

    def background():  # another thread logging to the run while the main thread forks
        step = 0
        while not stop.is_set() and step < 300_000:
            tracklane.log_metric("bg", step, step=step, run_id=run_id)
            step += 1
            if step % 200 == 0:
                time.sleep(0.0005)
        logged.append(step)

    thread = threading.Thread(target=background)
    thread.start()
    for i in range(forks):
        for step in range(i * 1_000, (i + 1) * 1_000):
            tracklane.log_metric("m", step, step=step)
        if i % 3 == 2:  # a DataLoader-style worker of the multiprocessing module
            worker = multiprocessing.get_context("fork").Process(target=child_run, args=(f"mp{i}",))
            worker.start()
            worker.join(60)
            assert worker.exitcode == 0, worker.exitcode
            continue
        pid = os.fork()
        if pid == 0:
            if i % 3 == 1:  # logs a run of its own, then a normal exit (atexit handlers run)
                child_run(f"fork{i}")
                sys.exit(0)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    stop.set()
    thread.join()
print(run_id, logged[0])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forking_many_times_mid_stream_loses_nothing(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    """A trainer forks 30 times (bare forks, forks that log runs, multiprocessing workers) while two
    threads keep logging: each history is exact, the children's runs hold only their own points."""
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", MANY_FORKS_TRAINER, tracking_server.uri, "30", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TRACKLANE_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert done.returncode == 0, done.stderr
    assert "skipping fork() handlers" not in done.stderr
    run_id, background = done.stdout.split()
    assert history(client, run_id, ["m"]) == {"m": (list(range(30_000)), [float(s) for s in range(30_000)])}
    steps = list(range(int(background)))
    assert history(client, run_id, ["bg"]) == {"bg": (steps, [float(s) for s in steps])}
    children = sorted(out.glob("*.child"))
    assert len(children) == 20
    for child in children:
        child_run_id = child.read_text()
        assert client.get_run(child_run_id).data.metrics == {"c": 99.0}
        assert history(client, child_run_id, ["c"]) == {
            "c": (list(range(100)), [float(s) for s in range(100)])
        }
    assert client.get_run(run_id).info.status == tracklane.RunStatus.FINISHED


def test_client_metric_stream_without_the_fluent_api(client: tracklane.Client, tmp_path: Path) -> None:
    """A service holding a Client streams to several runs from several threads, then refusals raise."""
    runs = [client.create_run("0").info.run_id for _ in range(3)]
    with client.metric_stream(spool_dir=tmp_path, flush_points=1_000) as metrics:

        def work(run_id: str) -> None:
            for step in range(5_000):
                metrics.log_metric(run_id, "loss", step / 4, step=step)

        threads = [threading.Thread(target=work, args=(run_id,)) for run_id in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics.log_metrics(runs[0], {"a": 1.0, "b": 2.0}, timestamp=1_700_000_000_000, step=9)
        metrics.log_metric_array(runs[1], "curve", np.arange(3.0), steps=[5, 6, 7])
        metrics.flush()
        assert client.get_metric_history(runs[1], "curve").steps == [5, 6, 7]
        with pytest.raises(InvalidArgument) as info:
            metrics.log_metric_array(runs[1], "curve", [1.0], timestamps=[1, 2])
        assert info.value.field == "timestamps"
    for run_id in runs:
        assert history(client, run_id, ["loss"]) == {
            "loss": (list(range(5_000)), [s / 4 for s in range(5_000)])
        }
    a = client.get_metric_history(runs[0], "a")
    assert (a.steps, a.values, a.timestamps) == ([9], [1.0], [1_700_000_000_000])
    with pytest.raises(NotFound), client.metric_stream(spool_dir=tmp_path) as metrics:
        metrics.log_metric("0123456789abcdef0123456789abcdef", "m", 1.0)


def test_offline_spool_then_sync_is_idempotent(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    """No server at the URI: flush times out into the spool; sync sends it; a second sync adds nothing."""
    run_id = client.create_run("0").info.run_id
    spool = tmp_path / "spool"
    config = MetricsConfig(spool_dir=spool, spill_after=0.2, flush_points=1_000)
    sender = MetricSender("grpc://127.0.0.1:1", config)  # nothing listens on port 1
    try:
        buffer = sender.buffer(run_id)
        for step in range(25_000):
            buffer.log("m", step / 2, step, None)
        with pytest.raises(DeadlineExceeded, match="tracklane sync"):
            sender.flush(1.0)
    finally:
        sender.close(0.5)
    assert list(spool.glob("*.tlspool"))
    report = sync_spool(tracking_server.uri, spool, timeout=60)
    assert (report.points_written, report.errors, report.unfinished) == (25_000, [], 0)
    assert list(spool.glob("*.tlspool")) == []
    again = sync_spool(tracking_server.uri, spool, timeout=60)
    assert again.batches == 0
    assert history(client, run_id, ["m"]) == {"m": (list(range(25_000)), [s / 2 for s in range(25_000)])}


def test_interpreter_exit_waits_for_acks(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    """A script that never ends its run: exit flushes, then ends the run FINISHED."""
    script = (
        "import tracklane\n"
        "for step in range(30_000):\n"
        "    tracklane.log_metric('m', step, step=step)\n"
        "print(tracklane.active_run().info.run_id)\n"
    )
    env = {
        **os.environ,
        "TRACKLANE_TRACKING_URI": tracking_server.uri,
        "TRACKLANE_SPOOL_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert history(client, run_id, ["m"]) == {"m": (list(range(30_000)), [float(s) for s in range(30_000)])}
    assert client.get_run(run_id).info.status == tracklane.RunStatus.FINISHED


def test_log_to_a_run_by_id_from_another_thread(fl: Any, client: tracklane.Client) -> None:
    """A background thread (system metrics, say) logs to the main thread's run by its id."""
    with fl.start_run() as run:

        def sampler() -> None:
            for step in range(2_000):
                fl.log_metric("bg", step, step=step, run_id=run.info.run_id)
            fl.log_metrics({"bg2": 1.0}, step=5, run_id=run.info.run_id)

        thread = threading.Thread(target=sampler)
        thread.start()
        thread.join()
        assert fl.active_run() is run  # no run was started for the thread
    expected = {"bg": (list(range(2_000)), [float(s) for s in range(2_000)]), "bg2": ([5], [1.0])}
    assert history(client, run.info.run_id, ["bg", "bg2"]) == expected


def test_memory_stays_bounded_while_the_server_is_away(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    """Past max_memory_points the backlog goes to disk, not to memory; sync delivers it all later."""
    run_id = client.create_run("0").info.run_id
    spool = tmp_path / "spool"
    config = MetricsConfig(
        spool_dir=spool, flush_points=2_000, max_memory_points=20_000, spill_after=600, flush_interval=0.02
    )
    sender = MetricSender("grpc://127.0.0.1:1", config)
    try:
        buffer = sender.buffer(run_id)
        peak = 0
        for step in range(200_000):
            buffer.log("m", step, step, None)
            if step % 1_000 == 0:
                peak = max(peak, sender._outbox_points)
    finally:
        sender.close(0.5)
    assert peak <= 20_000 + 2 * 2_000
    assert sum(p.stat().st_size for p in spool.glob("*.tlspool")) > 200_000 * 17  # ~25 bytes a point
    report = sync_spool(tracking_server.uri, spool, timeout=60)
    assert (report.points_written, report.errors) == (200_000, [])
    assert history(client, run_id, ["m"]) == {"m": (list(range(200_000)), [float(s) for s in range(200_000)])}


def test_a_full_spool_drops_and_says_so(
    tracking_server: LocalServer, client: tracklane.Client, tmp_path: Path
) -> None:
    run_id = client.create_run("0").info.run_id
    config = MetricsConfig(
        spool_dir=tmp_path, flush_points=1_000, spill_after=0.1, spool_max_bytes=60_000, max_inflight=1
    )
    sender = MetricSender("grpc://127.0.0.1:1", config)
    try:
        buffer = sender.buffer(run_id)
        for step in range(20_000):
            buffer.log("m", step, step, None)
            if step % 5_000 == 4_999:
                time.sleep(0.2)  # each 5,000 points become a batch (~90 kB, more than the cap)
        with pytest.raises(ResourceExhausted, match="dropped"):
            sender.flush(1)
        assert sender.points_refused > 0
    finally:
        sender.close(0.1)
