"""`tracklane models ...` (the registry) against a real `tracklane server`, as a user runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tracklane
from tests.e2e._cli_helpers import cli as tl
from tests.e2e._cli_helpers import cli_json as js
from tests.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("cli-models")
    with start_server(data_dir=base / "data", log_dir=base) as process:
        yield process


@pytest.fixture
def uri(server: ServerProcess) -> str:
    return f"grpc://{server.address}"


@pytest.fixture
def model_run(uri: str, tmp_path: Path) -> str:
    """A run with a two-file model folder at `model/`."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "weights.bin").write_bytes(b"\x00\x01weights")
    with tracklane.Client(uri) as client:
        run_id = client.create_run("0").info.run_id
        client.log_artifacts(run_id, folder, "model")
    return run_id


def test_models_create_get_list_rename_update_tags_delete(uri: str, unique: str) -> None:
    name = f"fraud-{unique}"
    created = tl(uri, "models", "create", name, "--description", "catches fraud", "--tag", "team=risk").stdout
    assert f"name:            {name}\n" in created
    assert "description:     catches fraud\n" in created
    assert "  team = risk\n" in created
    taken = tl(uri, "models", "create", name, ok=False)
    assert (taken.returncode, taken.stderr) == (
        2,
        f"tracklane: error: registered model {name!r} already exists\n",
    )

    tl(uri, "models", "set-tag", name, "tier", "gold")
    assert js(uri, "models", "get", name)["tags"] == {"team": "risk", "tier": "gold"}
    tl(uri, "models", "delete-tag", name, "team")
    updated = js(uri, "models", "update", name, "--description", "catches more fraud")
    assert (updated["description"], updated["tags"]) == ("catches more fraud", {"tier": "gold"})

    renamed = js(uri, "models", "rename", name, f"{name}-v2")
    assert renamed["name"] == f"{name}-v2"
    listed = js(uri, "models", "list", "--filter", f"name LIKE 'fraud-{unique}%'")
    assert [m["name"] for m in listed] == [f"{name}-v2"]
    table = tl(uri, "models", "list", "--filter", f"name LIKE 'fraud-{unique}%'").stdout.splitlines()
    assert table[0].split() == ["NAME", "LATEST", "ALIASES", "UPDATED", "DESCRIPTION"]
    assert table[1].split()[0] == f"{name}-v2"

    assert tl(uri, "models", "delete", f"{name}-v2").stdout == f"deleted: {name}-v2\n"
    gone = tl(uri, "models", "get", f"{name}-v2", ok=False)
    assert gone.returncode == 2
    assert gone.stderr == f"tracklane: error: registered model '{name}-v2' does not exist\n"
    assert js(uri, "models", "list", "--filter", f"name LIKE 'fraud-{unique}%'") == []


def test_versions_aliases_stages_history(uri: str, unique: str, model_run: str) -> None:
    name = f"churn-{unique}"
    tl(uri, "models", "create", name)
    source = f"runs:/{model_run}/model"
    first = js(uri, "models", "versions", "create", name, "--source", source, "--tag", "validated=yes")
    assert (first["version"], first["run_id"], first["tags"]) == (1, model_run, {"validated": "yes"})
    second = tl(uri, "models", "versions", "create", name, "--source", source).stdout
    assert "version:     2\n" in second

    aliased = js(uri, "models", "set-alias", name, "champion", "2")
    assert (aliased["version"], aliased["aliases"]) == (2, ["champion"])
    assert js(uri, "models", "versions", "get", name, "--alias", "champion")["version"] == 2
    tl(uri, "models", "set-alias", name, "champion", "1")  # roll back: the alias moves
    assert js(uri, "models", "versions", "get", name, "--alias", "champion")["version"] == 1

    staged = js(uri, "models", "versions", "transition-stage", name, "1", "production")
    assert staged["current_stage"] == "Production"
    js(uri, "models", "versions", "transition-stage", name, "2", "Production", "--archive-existing-versions")
    assert js(uri, "models", "versions", "get", name, "1")["current_stage"] == "Archived"

    tl(uri, "models", "versions", "set-tag", name, "2", "reviewed", "ana")
    tl(uri, "models", "versions", "delete-tag", name, "1", "validated")
    described = js(uri, "models", "versions", "update", name, "2", "--description", "retrained")
    assert (described["description"], described["tags"]) == ("retrained", {"reviewed": "ana"})
    assert js(uri, "models", "versions", "get", name, "1")["tags"] == {}

    versions = js(uri, "models", "versions", "list", name)
    assert [(v["version"], v["current_stage"]) for v in versions] == [(2, "Production"), (1, "Archived")]
    table = tl(uri, "models", "versions", "list", name).stdout.splitlines()
    assert table[0].split() == ["NAME", "VERSION", "STAGE", "ALIASES", "CREATED", "RUN_ID", "SOURCE"]
    assert [line.split()[:3] for line in table[1:]] == [[name, "2", "Production"], [name, "1", "Archived"]]
    assert table[2].split()[3] == "champion"
    tagged = js(uri, "models", "versions", "list", name, "--filter", "tags.reviewed = 'ana'")
    assert [v["version"] for v in tagged] == [2]

    assert js(uri, "models", "delete-alias", name, "champion") == {"name": name, "deleted_alias": "champion"}
    assert js(uri, "models", "get", name)["aliases"] == {}
    assert js(uri, "models", "versions", "delete", name, "1") == {"name": name, "deleted_version": 1}
    assert [v["version"] for v in js(uri, "models", "versions", "list", name)] == [2]

    history = js(uri, "models", "history", name)
    kinds = [e["kind"] for e in history]
    assert kinds[-1] == "model_created"
    assert {"version_created", "alias_set", "alias_deleted", "stage_transition", "version_deleted"} <= set(
        kinds
    )
    moves = [(e["old_value"], e["new_value"]) for e in history if e["kind"] == "alias_set"]
    assert moves == [("2", "1"), ("", "2")]  # newest first
    only_two = js(uri, "models", "history", name, "--version", "2")
    assert {e["version"] for e in only_two} == {2}

    missing = tl(uri, "models", "versions", "get", name, "7", ok=False)
    assert missing.returncode == 2
    assert missing.stderr == f"tracklane: error: registered model {name!r} has no version 7\n"
    bad_stage = tl(uri, "models", "versions", "transition-stage", name, "2", "live", ok=False)
    assert bad_stage.returncode == 2
    assert "invalid choice: 'Live'" in bad_stage.stderr


def test_download_by_version_alias_and_stage(uri: str, unique: str, model_run: str, tmp_path: Path) -> None:
    name = f"dl-{unique}"
    tl(uri, "models", "create", name)
    tl(uri, "models", "versions", "create", name, "--source", f"runs:/{model_run}/model")
    tl(uri, "models", "set-alias", name, "prod", "1")
    tl(uri, "models", "versions", "transition-stage", name, "1", "Staging")
    for i, model_uri in enumerate([f"models:/{name}/1", f"models:/{name}@prod", f"models:/{name}/staging"]):
        dst = tmp_path / f"out{i}"
        local = Path(js(uri, "models", "download", "-m", model_uri, "-d", str(dst))["local_path"])
        assert local == dst / "model"
        assert sorted(p.name for p in local.iterdir()) == ["MLmodel", "weights.bin"]
        assert (local / "weights.bin").read_bytes() == b"\x00\x01weights"
    nowhere = tl(uri, "models", "download", "-m", f"models:/{name}/production", "-d", str(tmp_path), ok=False)
    assert nowhere.returncode == 2
    assert (
        nowhere.stderr
        == f"tracklane: error: registered model {name!r} has no version in stage 'Production'\n"
    )
