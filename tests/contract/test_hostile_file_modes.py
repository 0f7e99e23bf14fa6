"""Other local accounts read nothing of the server's: data folder 0700, database and files 0600.

With auth on, every experiment and every user's token hash is in the database and the artifact
folder, so a 0755 data folder or 0644 files would hand them to every account on the machine. The
embedded default's data folder is private whatever the settings; artifact files are created 0600
with auth on, and follow the umask otherwise (never forced wider than it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import tracklane
from tracklane.testing import LocalServer


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_below(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): mode(p) for p in sorted(folder.rglob("*"))}


def log_an_artifact(client: tracklane.Client, tmp_path: Path) -> str:
    run_id = client.create_run().info.run_id
    local = tmp_path / "weights.bin"
    local.write_bytes(b"secret weights")
    client.log_artifact(run_id, local, "models/v1")
    return run_id


def test_with_auth_everything_is_private_even_under_umask_022(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with umask(0o022), LocalServer(data, auth=True) as server:
        token = (data / "admin-token").read_text().strip()
        with tracklane.Client(server.uri, token=token) as client:
            log_an_artifact(client, tmp_path)
    assert mode(data) == 0o700
    files = modes_below(data)
    for name in ("tracklane.db", "admin-token"):
        assert files[name] == 0o600, (name, oct(files[name]))
    artifacts = {k: v for k, v in files.items() if k.startswith("artifacts")}
    assert any(k.endswith("weights.bin") for k in artifacts)
    for name, found in artifacts.items():
        wanted = 0o600 if (data / name).is_file() else 0o700
        assert found == wanted, (name, oct(found))
    others = {k: oct(v) for k, v in files.items() if v & 0o077}
    assert others == {}, f"readable by other accounts: {others}"


def test_with_auth_what_an_older_version_left_open_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with umask(0o022), LocalServer(data, auth=True):
        pass
    os.chmod(data, 0o755)
    for name in ("tracklane.db", "admin-token"):
        os.chmod(data / name, 0o644)
    with umask(0o022), LocalServer(data, auth=True):
        assert mode(data) == 0o700
        assert mode(data / "tracklane.db") == 0o600
        assert mode(data / "admin-token") == 0o600


def test_without_auth_the_data_folder_is_private_and_files_follow_the_umask(tmp_path: Path) -> None:
    for mask, file_mode in ((0o022, 0o644), (0o077, 0o600)):
        data = tmp_path / f"data-{mask:o}"
        with umask(mask), LocalServer(data) as server, tracklane.Client(server.uri) as client:
            log_an_artifact(client, tmp_path)
        assert mode(data) == 0o700
        assert mode(data / "tracklane.db") == 0o600
        weights = next(data.rglob("weights.bin"))
        assert mode(weights) == file_mode, (oct(mask), oct(mode(weights)))


@pytest.mark.parametrize("auth", [False, True])
def test_a_database_outside_the_data_folder_is_created_private(tmp_path: Path, auth: bool) -> None:
    database = tmp_path / "elsewhere" / "meta.db"
    settings: dict[str, object] = {"backend_store_uri": f"sqlite:///{database}", "auth": auth}
    with umask(0o022), LocalServer(tmp_path / "data", **settings):
        pass
    assert mode(database) == 0o600
    assert mode(database.parent) == 0o700
