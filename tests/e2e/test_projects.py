"""`tracklane run` end to end, on both backends: the command as a user runs it, the project's own
process logging into the run through the fluent API, the run read back through the Client."""

from __future__ import annotations

import os
import re
import signal
import time
import zipfile
from pathlib import Path

import pytest

import tracklane
import tracklane.projects
from tests.projects_helpers import (
    git,
    run_env,
    start_tracklane_run,
    tracklane_run,
    write_docs_project,
    write_project,
)
from tracklane.testing import LocalServer


@pytest.fixture
def experiment(client: tracklane.Client, unique: str) -> str:
    return client.create_experiment(f"projects-{unique}")


@pytest.fixture
def env(tracking_server: LocalServer, tmp_path: Path) -> dict[str, str]:
    return run_env(tracking_server.uri, tmp_path / "cache")


def _only_run(client: tracklane.Client, experiment: str) -> tracklane.Run:
    runs = client.search_runs([experiment])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return client.get_run(runs[0].info.run_id)


def _artifacts(client: tracklane.Client, run_id: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, recursive=True) if not f.is_dir}


def test_mlflow_docs_project_lands_on_one_run(
    client: tracklane.Client, experiment: str, env: dict[str, str], tmp_path: Path
) -> None:
    project = write_docs_project(tmp_path / "proj")
    done = tracklane_run(
        [str(project), "-P", "data_file=data.csv", "--env-manager", "local", "--experiment-id", experiment],
        env,
        cwd=project,
    )
    assert done.returncode == 0, done.stderr
    assert "entry point started" in done.stdout  # streamed to the terminal
    run = _only_run(client, experiment)  # the project attached to the run; it made no second one
    assert run.info.status == tracklane.RunStatus.FINISHED
    assert f"attached to {run.info.run_id}" in done.stdout
    assert run.data.params == {"data_file": str(project / "data.csv"), "regularization": "0.1"}
    assert run.data.metrics == {"rows": 3.0, "loss": pytest.approx(1 / 1.1)}
    tags = run.data.tags
    assert tags["trained.by"] == "train.py"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(project)
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["mlflow.project.backend"] == "local"
    assert tags["mlflow.user"]
    assert _artifacts(client, run.info.run_id) == {"model/weights.txt", "project/output.log"}
    log = client.read_artifact(run.info.run_id, "project/output.log").decode()
    assert f"attached to {run.info.run_id}" in log


def test_failing_entry_point_fails_the_run(
    client: tracklane.Client, experiment: str, env: dict[str, str], tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "proj",
        """\
        name: broken
        entry_points:
          main:
            command: "echo about to fail >&2; exit 3"
        """,
    )
    done = tracklane_run([str(project), "--env-manager", "local", "--experiment-id", experiment], env)
    assert done.returncode == 1
    assert "about to fail" in done.stderr
    assert "FAILED" in done.stderr
    run = _only_run(client, experiment)
    assert run.info.status == tracklane.RunStatus.FAILED
    assert "about to fail" in client.read_artifact(run.info.run_id, "project/output.log").decode()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-P", "data_file=data.csv", "-P", "regularization=strong"], "regularization"),
        ([], "data_file"),
    ],
    ids=["bad-float", "missing"],
)
def test_bad_parameters_fail_before_anything_runs(
    client: tracklane.Client,
    experiment: str,
    env: dict[str, str],
    tmp_path: Path,
    args: list[str],
    named: str,
) -> None:
    project = write_docs_project(tmp_path / "proj")
    (project / "train.py").write_text("open('ran', 'w').write('yes')\n")
    done = tracklane_run(
        [".", *args, "--env-manager", "local", "--experiment-id", experiment], env, cwd=project
    )
    assert done.returncode == 2
    assert re.fullmatch(rf"tracklane: error: .*'{named}'.*\n", done.stderr), done.stderr
    assert not (project / "ran").exists()
    assert client.search_runs([experiment]) == []  # no run was made


def test_int_parameters_are_checked_and_extras_passed(
    client: tracklane.Client, experiment: str, env: dict[str, str], tmp_path: Path
) -> None:
    project = write_project(
        tmp_path / "proj",
        """\
        name: ints
        entry_points:
          main:
            parameters:
              epochs: {type: int, default: 2}
              name: string
            command: "python -c 'import sys; print(sys.argv[1:])' {epochs} {name}"
        """,
    )
    bad = tracklane_run([str(project), "-P", "epochs=2.5", "-P", "name=x", "--env-manager", "local"], env)
    assert bad.returncode == 2
    assert "'epochs' expects an int" in bad.stderr
    done = tracklane_run(
        [str(project), "-P", "name=a b; echo pwned", "-P", "extra=1", "--env-manager", "local",
         "--experiment-id", experiment],
        env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Values are shell-quoted: one argument each, nothing executed; the undeclared one is --extra 1.
    assert "['2', 'a b; echo pwned', '--extra', '1']" in done.stdout
    assert "pwned\n" not in done.stdout.replace("echo pwned", "")
    assert _only_run(client, experiment).data.params == {
        "epochs": "2",
        "name": "a b; echo pwned",
        "extra": "1",
    }


def test_git_repo_at_a_commit_records_it(
    client: tracklane.Client, experiment: str, env: dict[str, str], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    write_project(
        repo / "sub",
        """\
        name: versioned
        entry_points:
          main:
            command: "cat version.txt"
        """,
        {"version.txt": "one\n"},
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "sub" / "version.txt").write_text("two\n")
    git(repo, "commit", "-qam", "two")
    done = tracklane_run(
        [f"file://{repo}#sub", "-v", first, "--env-manager", "local", "--experiment-id", experiment], env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "one"  # that commit's file, not the working tree's
    tags = _only_run(client, experiment).data.tags
    assert tags["mlflow.source.git.commit"] == first
    assert tags["mlflow.source.git.repoURL"] == str(repo)
    assert tags["mlflow.source.name"] == f"file://{repo}#sub"
    assert (repo / "sub" / "version.txt").read_text() == "two\n"  # the checkout left alone
    by_branch = tracklane_run([str(repo / "sub"), "-v", "main", "--env-manager", "local"], env)
    assert by_branch.returncode == 0, by_branch.stderr
    assert by_branch.stdout.strip() == "two"
    unknown = tracklane_run([str(repo / "sub"), "-v", "no-such-branch", "--env-manager", "local"], env)
    assert unknown.returncode == 2
    assert "no-such-branch" in unknown.stderr


def test_zip_project_with_subdirectory(env: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "proj.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(
            "inner/MLproject", "name: zipped\nentry_points:\n  main:\n    command: 'echo from-zip'\n"
        )
    done = tracklane_run([f"{archive}#inner", "--env-manager", "local"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "from-zip"


def test_python_file_runs_as_an_entry_point(env: dict[str, str], tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "proj", "name: scripts\n", {"tools/hello.py": "import sys; print(sys.argv[1:])\n"}
    )
    done = tracklane_run(
        [str(project), "-e", "tools/hello.py", "-P", "who=me", "--env-manager", "local"], env
    )
    assert done.returncode == 0, done.stderr
    assert "['--who', 'me']" in done.stdout


SLOW_PROJECT = """\
name: slow
entry_points:
  main:
    command: "python slow.py"
"""
SLOW_PY = """\
import os, subprocess, sys, time
import tracklane
import tracklane.projects

with tracklane.start_run():
    tracklane.log_metric("step", 1)
    tracklane.flush()
    grandchild = subprocess.Popen(["sleep", "300"])
    open(sys.argv[0] + ".pids", "w").write(f"{os.getpid()} {grandchild.pid}")
    print("working", flush=True)
    time.sleep(300)
"""


def _wait_for_line(proc, needle: str, timeout: float = 120) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never printed: {''.join(lines)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_interrupt_kills_the_entry_point_and_the_run(
    client: tracklane.Client,
    experiment: str,
    env: dict[str, str],
    tmp_path: Path,
    sent: signal.Signals,
    code: int,
) -> None:
    project = write_project(tmp_path / "proj", SLOW_PROJECT, {"slow.py": SLOW_PY})
    proc = start_tracklane_run([str(project), "--env-manager", "local", "--experiment-id", experiment], env)
    try:
        _wait_for_line(proc, "working")
        child, grandchild = map(int, (project / "slow.py.pids").read_text().split())
        proc.send_signal(
            sent
        )  # what the terminal sends on Ctrl-C (to the runner: the project has its own group)
        assert proc.wait(60) == code
    finally:
        if proc.poll() is None:
            proc.kill()
        assert proc.stdout is not None
        proc.stdout.close()
    assert not _alive(child)
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:  # the whole process group
        time.sleep(0.1)
    assert not _alive(grandchild)
    run = _only_run(client, experiment)
    assert run.info.status == tracklane.RunStatus.KILLED
    assert run.data.metrics["step"] == 1.0
    assert "working" in client.read_artifact(run.info.run_id, "project/output.log").decode()


def test_no_wait_returns_the_run_id_at_once(
    client: tracklane.Client, experiment: str, env: dict[str, str], tmp_path: Path
) -> None:
    project = write_docs_project(tmp_path / "proj")
    (project / "train.py").write_text("import time, tracklane\ntime.sleep(2)\ntracklane.log_metric('m', 7)\n")
    done = tracklane_run(
        [str(project), "-P", f"data_file={project / 'data.csv'}", "--env-manager", "local", "--no-wait",
         "--experiment-id", experiment],
        env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert client.get_run(run_id).info.status == tracklane.RunStatus.RUNNING
    deadline = time.monotonic() + 120
    while client.get_run(run_id).info.status == tracklane.RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
    run = client.get_run(run_id)
    assert run.info.status == tracklane.RunStatus.FINISHED
    assert run.data.metrics == {"m": 7.0}
    assert run.data.params["regularization"] == "0.1"


def test_python_api_handle_waits_and_cancels(
    client: tracklane.Client,
    experiment: str,
    tracking_server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKLANE_PROJECTS_CACHE", str(tmp_path / "cache"))
    project = write_project(tmp_path / "proj", SLOW_PROJECT, {"slow.py": SLOW_PY})
    submitted = tracklane.projects.run(
        str(project),
        env_manager="local",
        experiment_id=experiment,
        synchronous=False,
        tracking_uri=tracking_server.uri,
        echo=False,
    )
    assert submitted.get_status() == "RUNNING"
    deadline = time.monotonic() + 120
    while not (project / "slow.py.pids").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    submitted.cancel()
    assert submitted.get_status() == "KILLED"
    assert submitted.wait() is False
    assert client.get_run(submitted.run_id).info.status == tracklane.RunStatus.KILLED

    quick = write_project(tmp_path / "quick", "name: q\nentry_points:\n  main:\n    command: 'true'\n")
    done = tracklane.projects.run(
        str(quick),
        env_manager="local",
        experiment_id=experiment,
        tracking_uri=tracking_server.uri,
        echo=False,
    )
    assert done.get_status() == "FINISHED"
    with pytest.raises(tracklane.projects.ExecutionException, match="FAILED") as failed:
        tracklane.projects.run(
            str(write_project(tmp_path / "bad", "name: b\nentry_points:\n  main:\n    command: 'false'\n")),
            env_manager="local",
            experiment_id=experiment,
            tracking_uri=tracking_server.uri,
            echo=False,
        )
    assert client.get_run(failed.value.run_id).info.status == tracklane.RunStatus.FAILED
