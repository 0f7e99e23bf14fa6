"""The fluent API (tracklane.fluent) against a real server, checked through tracklane.Client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracklane
from tracklane import data
from tracklane.exceptions import FailedPrecondition, NotFound
from tracklane.testing import LocalServer


def test_tracking_uri(fl: Any, tracking_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fl.get_tracking_uri() == tracking_server.uri
    fl._reset()
    monkeypatch.setenv("TRACKLANE_TRACKING_URI", "grpc://example.invalid:1234")
    assert fl.get_tracking_uri() == "grpc://example.invalid:1234"
    monkeypatch.delenv("TRACKLANE_TRACKING_URI")
    assert fl.get_tracking_uri() == "grpc://localhost:50051"


def test_set_experiment_creates_then_reuses(fl: Any, client: tracklane.Client, unique: str) -> None:
    name = f"fluent-{unique}"
    assert fl.get_experiment_by_name(name) is None
    created = fl.set_experiment(name)
    assert created.name == name
    again = fl.set_experiment(name)
    assert again.experiment_id == created.experiment_id
    assert fl.set_experiment(experiment_id=created.experiment_id).name == name
    found = fl.get_experiment_by_name(name)
    assert found is not None
    assert found.experiment_id == created.experiment_id
    with fl.start_run() as run:
        assert run.info.experiment_id == created.experiment_id
    with pytest.raises(NotFound):
        fl.set_experiment(experiment_id="999999999")
    with pytest.raises(ValueError, match="exactly one"):
        fl.set_experiment(name, experiment_id=created.experiment_id)


def test_set_experiment_race_creates_one_experiment(fl: Any, unique: str) -> None:
    name = f"fluent-race-{unique}"
    barrier = threading.Barrier(8)
    ids: list[str] = []
    errors: list[BaseException] = []

    def racer() -> None:
        try:
            barrier.wait(timeout=30)
            ids.append(fl.set_experiment(name).experiment_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(ids) == 8
    assert len(set(ids)) == 1


def test_set_experiment_from_environment(fl: Any, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKLANE_EXPERIMENT_NAME", f"fluent-env-{unique}")
    with fl.start_run() as run:  # no set_experiment: the environment's, created when missing
        pass
    experiment = fl.get_experiment_by_name(f"fluent-env-{unique}")
    assert experiment is not None
    assert run.info.experiment_id == experiment.experiment_id
    assert fl.set_experiment().experiment_id == experiment.experiment_id


def test_start_run_logs_and_finishes(fl: Any, client: tracklane.Client, unique: str) -> None:
    fl.set_experiment(f"fluent-{unique}")
    with fl.start_run(run_name="baseline", tags={"team": "vision"}, description="first try") as run:
        assert fl.active_run() is run
        assert isinstance(run, tracklane.Run)
        assert run.info.status == tracklane.RunStatus.RUNNING
        assert fl.log_param("lr", 0.01) == 0.01
        fl.log_params({"layers": 3, "opt": "adam"})
        fl.log_metric("loss", 0.5, step=1)
        fl.log_metric("loss", 0.25, step=2, timestamp=1_700_000_000_000)
        fl.log_metrics({"acc": 0.9, "f1": 0.8}, step=2)
        fl.set_tag("stage", "dev")
        fl.set_tags({"a": 1, "b": "two"})
    assert fl.active_run() is None
    stored = client.get_run(run.info.run_id)
    assert stored.info.status == tracklane.RunStatus.FINISHED
    assert stored.info.end_time is not None
    assert stored.info.end_time >= (stored.info.start_time or 0)
    assert stored.info.run_name == "baseline"
    assert stored.info.description == "first try"
    assert stored.data.params == {"lr": "0.01", "layers": "3", "opt": "adam"}
    assert stored.data.metrics == {"loss": 0.25, "acc": 0.9, "f1": 0.8}
    assert stored.data.latest_metrics["loss"].timestamp == 1_700_000_000_000
    history = client.get_metric_history(run.info.run_id, "loss")
    assert list(history.steps) == [1, 2]
    assert list(history.values) == [0.5, 0.25]
    tags = stored.data.tags
    assert (tags["team"], tags["stage"], tags["a"], tags["b"]) == ("vision", "dev", "1", "two")
    last = fl.last_active_run()
    assert last is not None
    assert last.info.run_id == run.info.run_id
    assert last.info.status == tracklane.RunStatus.FINISHED


def test_exception_fails_the_run_and_propagates(fl: Any, client: tracklane.Client, unique: str) -> None:
    fl.set_experiment(f"fluent-{unique}")

    def fail_inside_a_run() -> None:
        with fl.start_run() as run:
            started.append(run.info.run_id)
            fl.log_metric("x", 1.0)
            raise ZeroDivisionError("boom")

    started: list[str] = []
    with pytest.raises(ZeroDivisionError, match="boom"):
        fail_inside_a_run()
    assert fl.active_run() is None
    stored = client.get_run(started[0])
    assert stored.info.status == tracklane.RunStatus.FAILED
    assert stored.info.end_time is not None


def test_nested_runs_and_second_run_refused(fl: Any, client: tracklane.Client, unique: str) -> None:
    fl.set_experiment(f"fluent-{unique}")
    with fl.start_run() as parent:
        with pytest.raises(FailedPrecondition, match="nested=True"):
            fl.start_run()
        with fl.start_run(nested=True) as child:
            assert fl.active_run() is child
            assert child.info.parent_run_id == parent.info.run_id
            with fl.start_run(nested=True) as grandchild:
                fl.log_param("depth", 2)
        assert fl.active_run() is parent
    assert client.get_run(child.info.run_id).info.parent_run_id == parent.info.run_id
    assert client.get_run(grandchild.info.run_id).info.parent_run_id == child.info.run_id
    assert client.get_run(grandchild.info.run_id).data.params == {"depth": "2"}
    for run in (parent, child, grandchild):
        assert client.get_run(run.info.run_id).info.status == tracklane.RunStatus.FINISHED


def test_leaving_an_outer_with_ends_runs_left_open_inside(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as parent:
        inner = fl.start_run(nested=True)  # never ended explicitly
    assert fl.active_run() is None
    assert client.get_run(inner.info.run_id).info.status == tracklane.RunStatus.FINISHED
    assert client.get_run(parent.info.run_id).info.status == tracklane.RunStatus.FINISHED


def test_end_run_and_resume_by_run_id(fl: Any, client: tracklane.Client, unique: str) -> None:
    fl.set_experiment(f"fluent-{unique}")
    run = fl.start_run()
    fl.log_param("p", 1)
    fl.end_run()
    fl.end_run()  # nothing active: no-op
    assert fl.active_run() is None
    assert client.get_run(run.info.run_id).info.status == tracklane.RunStatus.FINISHED
    with fl.start_run(run_id=run.info.run_id, tags={"resumed": "yes"}) as resumed:
        assert resumed.info.run_id == run.info.run_id
        assert resumed.info.status == tracklane.RunStatus.RUNNING
        assert resumed.data.params == {"p": "1"}
        assert client.get_run(run.info.run_id).info.status == tracklane.RunStatus.RUNNING
        fl.log_metric("after", 2.0)
    stored = client.get_run(run.info.run_id)
    assert stored.info.status == tracklane.RunStatus.FINISHED
    assert stored.data.metrics == {"after": 2.0}
    assert stored.data.tags["resumed"] == "yes"
    run2 = fl.start_run()
    fl.end_run("KILLED")
    assert client.get_run(run2.info.run_id).info.status == tracklane.RunStatus.KILLED
    with pytest.raises(NotFound):
        fl.start_run(run_id="0123456789abcdef0123456789abcdef")
    assert fl.active_run() is None


def test_active_and_last_active_run(fl: Any) -> None:
    assert fl.active_run() is None
    assert fl.last_active_run() is None
    with fl.start_run() as run:
        assert fl.active_run() is run
        fl.log_param("p", 1)
        last = fl.last_active_run()
        assert last is not None
        assert last.info.run_id == run.info.run_id
        assert last.data.params == {"p": "1"}  # read again: what was logged since the start
        with pytest.raises(FailedPrecondition, match="already active"):
            fl.start_run(run_id=run.info.run_id, nested=True)
    assert fl.active_run() is None
    last = fl.last_active_run()
    assert last is not None
    assert last.info.run_id == run.info.run_id


def test_logging_without_a_run_starts_one(fl: Any, client: tracklane.Client, unique: str) -> None:
    experiment = fl.set_experiment(f"fluent-{unique}")
    assert fl.active_run() is None
    fl.log_metric("auto", 1.5)
    run = fl.active_run()
    assert run is not None
    assert run.info.experiment_id == experiment.experiment_id
    fl.log_param("k", "v")
    assert fl.active_run() is run
    fl.end_run()
    stored = client.get_run(run.info.run_id)
    assert stored.data.metrics == {"auto": 1.5}
    assert stored.data.params == {"k": "v"}
    assert stored.info.status == tracklane.RunStatus.FINISHED


def test_delete_tag(fl: Any, client: tracklane.Client) -> None:
    with fl.start_run() as run:
        fl.set_tags({"keep": "1", "drop": "2"})
        fl.delete_tag("drop")
        with pytest.raises(NotFound):
            fl.delete_tag("never-set")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags.get("keep") == "1"
    assert "drop" not in tags


def test_log_input_numpy_and_pandas(fl: Any, client: tracklane.Client) -> None:
    pd = pytest.importorskip("pandas")
    features = data.from_numpy(np.arange(6.0).reshape(3, 2), source="s3://bucket/x.npy", name="feats")
    frame = data.from_pandas(pd.DataFrame({"a": [1, 2], "y": [0, 1]}), source="/tmp/t.csv", targets="y")
    with fl.start_run() as run:
        fl.log_input(features, context="training", tags={"split": "train"})
        fl.log_input(frame, context="validation")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    by_context = {i.context: i for i in inputs}
    assert set(by_context) == {"training", "validation"}
    assert by_context["training"].dataset == features.to_entity()
    assert by_context["training"].tags == {"split": "train"}
    assert by_context["validation"].dataset == frame.to_entity()
    assert by_context["validation"].dataset.source_type == "local"


def test_search_runs_dataframe_and_list(fl: Any, unique: str) -> None:
    pd = pytest.importorskip("pandas")
    experiment = fl.set_experiment(f"fluent-{unique}")
    ids = []
    for i in range(3):
        with fl.start_run() as run:
            fl.log_metric("acc", 0.5 + i / 10)
            fl.log_param("i", i)
            fl.set_tag("kind", "search")
            ids.append(run.info.run_id)
    df = fl.search_runs(order_by=["metrics.acc DESC"])
    assert isinstance(df, pd.DataFrame)
    assert list(df["run_id"]) == ids[::-1]
    for column in ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"):
        assert column in df.columns
    assert list(df["metrics.acc"]) == pytest.approx([0.7, 0.6, 0.5])
    assert list(df["params.i"]) == ["2", "1", "0"]
    assert set(df["tags.kind"]) == {"search"}
    assert set(df["status"]) == {"FINISHED"}
    assert set(df["experiment_id"]) == {experiment.experiment_id}
    assert str(df["start_time"].dt.tz) == "UTC"
    filtered = fl.search_runs([experiment.experiment_id], "metrics.acc > 0.55", output_format="list")
    assert isinstance(filtered, list)
    assert {r.info.run_id for r in filtered} == set(ids[1:])
    assert all(isinstance(r, tracklane.Run) for r in filtered)
    by_name = fl.search_runs(experiment_names=[f"fluent-{unique}"], output_format="list", max_results=2)
    assert len(by_name) == 2
    empty = fl.search_runs(filter_string="metrics.acc > 5")
    assert isinstance(empty, pd.DataFrame)
    assert len(empty) == 0
    assert "run_id" in empty.columns


def test_search_runs_without_pandas_says_so(fl: Any, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pandas the DataFrame form raises (naming the extra) instead of returning a list."""
    fl.set_experiment(f"fluent-{unique}")
    with fl.start_run() as run:
        pass
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` meets when it is not installed
    with pytest.raises(ImportError, match=r"pip install 'tracklane\[pandas\]'.*output_format='list'"):
        fl.search_runs()
    runs = fl.search_runs(output_format="list")
    assert [r.info.run_id for r in runs] == [run.info.run_id]


def test_threads_have_their_own_runs(fl: Any, client: tracklane.Client, unique: str) -> None:
    fl.set_experiment(f"fluent-{unique}")
    barrier = threading.Barrier(2)
    run_ids: dict[str, str] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with fl.start_run(run_name=name) as run:
                barrier.wait(timeout=30)  # both runs are active at once
                for step in range(5):
                    fl.log_metric("step_of", float(step), step=step)
                fl.log_param("thread", name)
                assert fl.active_run() is run
                run_ids[name] = run.info.run_id
                barrier.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert fl.active_run() is None  # the main thread has none
    assert run_ids["t1"] != run_ids["t2"]
    for name, run_id in run_ids.items():
        stored = client.get_run(run_id)
        assert stored.data.params == {"thread": name}
        assert stored.info.run_name == name
        assert stored.info.status == tracklane.RunStatus.FINISHED
        assert len(client.get_metric_history(run_id, "step_of")) == 5


FORKED_CHILD_SCRIPT = """
import multiprocessing, sys
import tracklane

def child(queue):
    try:
        active = tracklane.active_run()
        tracklane.log_metric("child_metric", 7.0)  # starts the child's own run
        run = tracklane.active_run()
        assert run is not None
        tracklane.end_run()
        queue.put(("ok", None if active is None else active.info.run_id, run.info.run_id))
    except BaseException as exc:
        queue.put(("error", repr(exc), ""))

tracklane.set_tracking_uri(sys.argv[1])
experiment = tracklane.set_experiment(sys.argv[2])
ctx = multiprocessing.get_context("fork")
with tracklane.start_run() as parent:
    tracklane.log_metric("parent_metric", 1.0)
    queue = ctx.Queue()
    process = ctx.Process(target=child, args=(queue,))
    process.start()
    outcome, active_in_child, child_run_id = queue.get(timeout=60)
    process.join(timeout=60)
assert outcome == "ok", active_in_child
assert process.exitcode == 0, process.exitcode
assert active_in_child is None, active_in_child
print(experiment.experiment_id, parent.info.run_id, child_run_id)
"""


def test_forked_child_starts_clean(
    tracking_server: LocalServer, client: tracklane.Client, unique: str, tmp_path: Path
) -> None:
    # In a training process of its own: this test process hosts the server, whose threads are always
    # inside gRPC, and gRPC cannot make a fork of such a process safe.
    done = subprocess.run(
        [sys.executable, "-c", FORKED_CHILD_SCRIPT, tracking_server.uri, f"fluent-{unique}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TRACKLANE_SPOOL_DIR": str(tmp_path / "spool")},
    )
    assert done.returncode == 0, done.stderr
    experiment_id, parent_run_id, child_run_id = done.stdout.split()
    assert child_run_id != parent_run_id
    child_run = client.get_run(child_run_id)
    # The child forgot the active experiment, too: its run is in the default experiment.
    assert child_run.info.experiment_id == "0" != experiment_id
    assert child_run.data.metrics == {"child_metric": 7.0}
    assert child_run.info.status == tracklane.RunStatus.FINISHED
    assert client.get_run(parent_run_id).data.metrics == {"parent_metric": 1.0}


def test_atexit_handler_ends_runs_of_every_thread(fl: Any, client: tracklane.Client) -> None:
    main_run = fl.start_run()
    other: list[str] = []
    thread = threading.Thread(target=lambda: other.append(fl.start_run().info.run_id))
    thread.start()
    thread.join()
    fl._end_all_at_exit()
    for run_id in (main_run.info.run_id, other[0]):
        assert client.get_run(run_id).info.status == tracklane.RunStatus.FINISHED
