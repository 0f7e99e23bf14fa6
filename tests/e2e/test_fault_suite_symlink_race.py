"""Fault suite, local artifact folder: someone swaps a run's folder for a link while the server works.

A local account that may write the artifact folder (a shared group, another tool) renames a run's
folder away and puts a symbolic link to a folder of its choosing in its place, then puts it back,
in a loop, while clients download, upload, list and delete. The server resolves every path one
component at a time without following links (no check-then-use), so whatever the timing:

- a download returns the run's own bytes or an error, never a file of the outside folder;
- a listing never shows an outside file; a delete never removes one;
- an upload never leaves its bytes or its temporary file outside, and each acknowledged upload is
  in the run's real folder afterwards.

Run on SQLite and on PostgreSQL (the metadata store does not matter here, the local folder does).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import tracklane
from tests.servers import own_backend
from tracklane.testing import LocalServer

pytestmark = pytest.mark.timeout(300)

SECONDS = 6.0  # of racing; enough for hundreds of calls on a loaded 2-core machine
OUTSIDE = b"OUTSIDE: a file the clients must never get"
INSIDE = b"inside: the run's own file"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalServer]:
    with own_backend(request) as backend, LocalServer(tmp_path / "data", **backend.settings()) as local:
        yield local


def outside_tree(tmp_path: Path) -> Path:
    """A folder shaped like a run's (``artifacts/...``), with files of the same names."""
    outside = tmp_path / "outside-run"
    (outside / "artifacts" / "sub").mkdir(parents=True)
    for name in ("f.txt", "victim.txt", "outside-only.txt", "sub/f.txt"):
        (outside / "artifacts" / name).write_bytes(OUTSIDE)
    return outside


_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> None:
    """Swaps two names atomically (renameat2 RENAME_EXCHANGE): the run's path is never missing, so
    the server never sees a gap in which to recreate the folder."""
    if _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(a))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_swapping_the_run_folder_for_a_link_never_reaches_outside(
    server: LocalServer, tmp_path: Path
) -> None:
    outside = outside_tree(tmp_path)
    before = snapshot(outside)
    local = tmp_path / "f.txt"
    local.write_bytes(INSIDE)
    with tracklane.Client(server.uri) as client:
        run_id = client.create_run().info.run_id
        client.log_artifact(run_id, local)
        client.log_artifact(run_id, local, "sub")
        run_folder = Path(urlsplit(client.get_run(run_id).info.artifact_uri).path).parent
        link = run_folder.with_name(run_folder.name + ".link")
        link.symlink_to(outside, target_is_directory=True)
        stop = threading.Event()
        swaps = 0

        def swap() -> None:
            nonlocal swaps
            while not stop.is_set():
                exchange(run_folder, link)  # the run's path is now a link to the outside folder
                time.sleep(0.0005)
                exchange(run_folder, link)
                swaps += 1
                time.sleep(0.0005)

        outcomes: Counter[str] = Counter()
        leaks: list[str] = []
        acknowledged: list[str] = []
        lock = threading.Lock()

        def note(outcome: str, leak: str = "") -> None:
            with lock:
                outcomes[outcome] += 1
                if leak:
                    leaks.append(leak)

        def download() -> None:
            while not stop.is_set():
                for path in ("f.txt", "sub/f.txt"):
                    try:
                        data = client.read_artifact(run_id, path)
                    except tracklane.exceptions.TracklaneError as exc:
                        note(f"download {exc.code.name}")
                        continue
                    note("download ok", f"download {path}" if data != INSIDE else "")

        def upload() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                name = f"up-{i}.txt"
                (tmp_path / name).write_bytes(INSIDE)
                try:
                    client.log_artifact(run_id, tmp_path / name, "sub" if i % 2 else None)
                except tracklane.exceptions.TracklaneError as exc:
                    note(f"upload {exc.code.name}")
                    continue
                note("upload ok")
                acknowledged.append(f"sub/{name}" if i % 2 else name)

        def list_and_delete() -> None:
            while not stop.is_set():
                try:
                    listed = [f.path for f in client.list_artifacts(run_id, recursive=True)]
                    note("list ok", f"list {listed}" if "outside-only.txt" in listed else "")
                except tracklane.exceptions.TracklaneError as exc:
                    note(f"list {exc.code.name}")
                try:
                    client.delete_artifacts(run_id, "victim.txt")
                    note("delete ok")
                except tracklane.exceptions.TracklaneError as exc:
                    note(f"delete {exc.code.name}")

        workers = [threading.Thread(target=t) for t in (swap, download, download, upload, list_and_delete)]
        for worker in workers:
            worker.start()
        time.sleep(SECONDS)
        stop.set()
        for worker in workers:
            worker.join(60)
        assert not run_folder.is_symlink()
        print(f"{swaps} swaps; outcomes: {dict(outcomes)}")
        assert swaps > 100, "the race barely ran"
        assert outcomes["download ok"] > 50, outcomes
        assert outcomes["upload ok"] > 5, outcomes
        assert leaks == [], (
            f"{len(leaks)} calls reached the outside folder (of {sum(outcomes.values())}): {leaks[:5]}"
        )
        assert snapshot(outside) == before, (
            "files appeared in, changed in or vanished from the outside folder"
        )
        assert not [o for o in outcomes if o.endswith("INTERNAL")], outcomes
        stored = {f.path for f in client.list_artifacts(run_id, recursive=True)}
        assert set(acknowledged) <= stored
        for path in acknowledged[:20]:
            assert client.read_artifact(run_id, path) == INSIDE
    # Nothing but the run's files (and no temporary file) under the real run folder either.
    assert not [p for p in run_folder.rglob(".tracklane-upload-*")]
