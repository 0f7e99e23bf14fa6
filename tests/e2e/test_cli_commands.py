"""The commands a newcomer reaches for, run as a user runs them against a real `tracklane server`:
--version and --help, experiments get/rename/delete/restore/set-tag, runs update/restore, users
in table form, a server that is not running, and output cut short by `| head`."""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.e2e._cli_helpers import cli as tl
from tests.e2e._cli_helpers import cli_json as as_json
from tests.servers import ServerProcess, clean_env, free_port, start_server, tracklane_executable
from tracklane_server.cli import build_parser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli-commands")
    with start_server(data_dir=base / "data", log_dir=base) as process:
        yield process


def uri_of(server: ServerProcess) -> str:
    return f"grpc://{server.address}"


def test_version_and_help_list_every_command() -> None:
    version = tl("grpc://127.0.0.1:1", "--version")
    assert version.stdout.strip() == f"tracklane {tracklane.__version__}"
    top = tl("grpc://127.0.0.1:1", "--help").stdout
    for command in ("server", "db", "experiments", "runs", "models", "artifacts", "sync", "users"):
        assert f"\n    {command}" in top, command
    experiments = tl("grpc://127.0.0.1:1", "experiments", "--help").stdout
    for command in ("list", "create", "get", "rename", "delete", "restore", "set-tag", "delete-tag"):
        assert f"\n    {command}" in experiments, command
    runs = tl("grpc://127.0.0.1:1", "runs", "--help").stdout
    for command in ("list", "get", "update", "delete", "restore"):
        assert f"\n    {command}" in runs, command
    models = tl("grpc://127.0.0.1:1", "models", "--help").stdout
    for command in ("list", "get", "create", "rename", "delete", "download", "set-alias", "versions"):
        assert f"\n    {command}" in models, command
    versions = tl("grpc://127.0.0.1:1", "models", "versions", "--help").stdout
    for command in ("list", "get", "create", "delete", "transition-stage", "set-tag", "delete-tag"):
        assert f"\n    {command}" in versions, command


def _leaf_parsers(
    parser: argparse.ArgumentParser, path: str = "tracklane"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser
    for action in subcommands:
        for name, child in action.choices.items():
            yield from _leaf_parsers(child, f"{path} {name}")


def test_every_option_and_argument_has_help_and_repeatable_ones_say_so() -> None:
    undocumented, silent_repeats = [], []
    for path, parser in _leaf_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = action.option_strings[0] if action.option_strings else action.dest
            if not action.help:
                undocumented.append(f"{path} {name}")
            if isinstance(action, argparse._AppendAction) and "repeat" not in (action.help or ""):
                silent_repeats.append(f"{path} {name}")
    assert undocumented == []
    assert silent_repeats == []


def test_experiments_get_rename_tag_delete_restore(server: ServerProcess, unique: str) -> None:
    uri = uri_of(server)
    created = as_json(uri, "experiments", "create", f"cli-{unique}", "--tag", "team=cv")
    assert isinstance(created, dict)
    experiment_id = created["experiment_id"]
    shown = tl(uri, "experiments", "get", experiment_id).stdout
    assert f"name:              cli-{unique}\n" in shown
    assert "  team = cv\n" in shown
    by_name = as_json(uri, "experiments", "get", "--name", f"cli-{unique}")
    assert isinstance(by_name, dict)
    assert by_name["experiment_id"] == experiment_id

    tl(uri, "experiments", "set-tag", experiment_id, "owner", "ana")
    renamed = as_json(uri, "experiments", "rename", experiment_id, f"cli-{unique}-2")
    assert isinstance(renamed, dict)
    assert (renamed["name"], renamed["tags"]) == (f"cli-{unique}-2", {"owner": "ana", "team": "cv"})
    tl(uri, "experiments", "delete-tag", experiment_id, "team")

    with tracklane.Client(uri) as client:
        live = client.create_run(experiment_id).info.run_id
        own = client.create_run(experiment_id).info.run_id
        client.delete_run(own)
    assert tl(uri, "experiments", "delete", experiment_id).stdout == f"deleted: {experiment_id}\n"
    stage = as_json(uri, "experiments", "get", experiment_id)
    assert isinstance(stage, dict)
    assert stage["lifecycle_stage"] == "deleted"
    deleted = as_json(uri, "experiments", "list", "--view", "deleted")
    assert isinstance(deleted, list)
    assert experiment_id in [e["experiment_id"] for e in deleted]
    assert tl(uri, "experiments", "restore", experiment_id).stdout == f"restored: {experiment_id}\n"
    runs = as_json(uri, "runs", "list", "--experiment-id", experiment_id)
    assert isinstance(runs, list)
    assert [r["info"]["run_id"] for r in runs] == [live]  # the run deleted on its own stays deleted
    taken = as_json(uri, "experiments", "get", experiment_id)
    assert isinstance(taken, dict)
    assert taken["tags"] == {"owner": "ana"}

    missing = tl(uri, "experiments", "get", "--name", f"nothing-{unique}", ok=False)
    assert missing.returncode == 2
    assert missing.stderr == f"tracklane: error: experiment 'nothing-{unique}' does not exist\n"
    empty = tl(uri, "experiments", "list", "--filter", f"name = 'nothing-{unique}'").stdout
    assert empty.split() == ["EXPERIMENT_ID", "NAME", "STAGE", "CREATED", "ARTIFACT_LOCATION"]


def test_runs_update_delete_restore(server: ServerProcess, unique: str) -> None:
    uri = uri_of(server)
    with tracklane.Client(uri) as client:
        experiment_id = client.create_experiment(f"cli-runs-{unique}")
        run_id = client.create_run(experiment_id, run_name="first").info.run_id
    updated = tl(uri, "runs", "update", run_id, "--name", "better", "--status", "finished").stdout
    assert "name:          better\n" in updated
    assert "status:        FINISHED\n" in updated
    shown = as_json(uri, "runs", "get", run_id)
    assert isinstance(shown, dict)
    assert (shown["info"]["run_name"], shown["info"]["status"]) == ("better", "FINISHED")
    assert shown["info"]["end_time"] is not None

    assert tl(uri, "runs", "delete", run_id).stdout == f"deleted: {run_id}\n"
    assert as_json(uri, "runs", "list", "--experiment-id", experiment_id) == []
    assert (
        tl(uri, "runs", "restore", run_id, "--output", "json").stdout == f'{{\n  "restored": "{run_id}"\n}}\n'
    )
    listed = as_json(uri, "runs", "list", "--experiment-id", experiment_id)
    assert isinstance(listed, list)
    assert [r["info"]["run_id"] for r in listed] == [run_id]

    nothing = tl(uri, "runs", "update", run_id, ok=False)
    assert nothing.returncode == 2
    assert nothing.stderr == "tracklane: error: runs update: give --name, --status or both\n"
    bad = tl(uri, "runs", "update", run_id, "--status", "done", ok=False)
    assert bad.returncode == 2
    assert "invalid choice: 'DONE'" in bad.stderr


def test_no_server_says_how_to_start_one() -> None:
    uri = f"grpc://127.0.0.1:{free_port()}"  # nothing listens there
    result = tl(uri, "experiments", "list", ok=False)
    assert result.returncode == 69
    assert result.stdout == ""
    assert result.stderr == (
        f"tracklane: error: no Tracklane server at {uri} (connection refused): start one with "
        "`tracklane server` (it serves on 127.0.0.1:50051), or point --tracking-uri or "
        "TRACKLANE_TRACKING_URI at yours\n"
    )
    unresolvable = tl("grpc://no-such-host.invalid:50051", "models", "list", ok=False)
    assert unresolvable.returncode == 69
    assert unresolvable.stderr.startswith(
        "tracklane: error: cannot resolve the host of the tracking URI grpc://no-such-host.invalid:50051: "
        "start one with `tracklane server`"
    )


def test_a_closed_pipe_ends_the_command_quietly(server: ServerProcess, unique: str) -> None:
    """`tracklane ... --output json | head`: the reader leaves early; no traceback, no error line."""
    uri = uri_of(server)
    with tracklane.Client(uri) as client:
        for i in range(3):
            client.create_experiment(f"pipe-{unique}-{i}")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write meets EPIPE
    try:
        result = tl(uri, "experiments", "list", "--output", "json", ok=False, stdout=write)
    finally:
        os.close(write)
    assert result.stderr == ""
    assert result.returncode == 141  # 128 + SIGPIPE, what a shell shows for `yes | head`
    # And through a real `head`, as a user types it: the pipeline ends with head's exit status.
    shell = subprocess.run(
        f"{tracklane_executable()} experiments list --output json | head -n 2",
        shell=True,
        capture_output=True,
        text=True,
        env=clean_env({"TRACKLANE_TRACKING_URI": uri}),
        timeout=60,
    )
    assert (shell.returncode, shell.stderr, shell.stdout.splitlines()[0]) == (0, "", "[")


def test_users_create_and_update_print_the_user(tmp_path: Path) -> None:
    with start_server("--auth", "true", data_dir=tmp_path / "data") as auth_server:
        admin = (tmp_path / "data" / "admin-token").read_text().strip()
        uri = uri_of(auth_server)
        created = tl(uri, "users", "create", "carol", token=admin).stdout.splitlines()
        assert created[:2] == ["name:    carol", "admin:   no"]
        assert created[2].startswith("created: 20")
        updated = tl(uri, "users", "update", "carol", "--admin", token=admin).stdout.splitlines()
        assert updated[:2] == ["name:    carol", "admin:   yes"]
