"""Auth on the real ``tracklane server``: the bootstrap token file, ``tracklane users|tokens``, and no
secret in the server's DEBUG log."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import tracklane
from tests.servers import ServerProcess, clean_env, free_port, server_argv, start_server, tracklane_executable

WRONG_TOKEN = "tlk_wrong-token-nobody-was-given-0123456789"


def tl(server: ServerProcess, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.pop("TRACKLANE_TRACKING_TOKEN", None)
    if token is not None:
        env["TRACKLANE_TRACKING_TOKEN"] = token
    return subprocess.run(
        [tracklane_executable(), *args, "--tracking-uri", f"grpc://{server.address}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bootstrap_cli_and_logs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token_file = data / "admin-token"
    secrets_seen: list[str] = [WRONG_TOKEN]
    with start_server("--auth", "true", "--log-level", "DEBUG", data_dir=data) as server:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        admin = token_file.read_text().strip()
        secrets_seen.append(admin)
        assert admin.startswith("tlk_")
        assert str(token_file) in server.log

        user = json.loads(ok(tl(server, admin, "users", "create", "alice", "--output", "json")))
        assert (user["name"], user["is_admin"]) == ("alice", False)
        created = json.loads(
            ok(tl(server, admin, "tokens", "create", "--user", "alice", "--name", "ci", "--expires-in", "7",
                  "--output", "json"))
        )  # fmt: skip
        alice = created["secret"]
        secrets_seen.append(alice)
        assert created["token"]["user_name"] == "alice"
        assert created["token"]["expire_time"] > created["token"]["create_time"]

        experiment = json.loads(
            ok(tl(server, alice, "experiments", "create", "by-alice", "--output", "json"))
        )
        assert experiment["experiment_id"]
        own = json.loads(ok(tl(server, alice, "tokens", "list", "--output", "json")))["tokens"]
        assert [(t["token_id"], t["name"]) for t in own] == [(created["token"]["token_id"], "ci")]
        table = ok(tl(server, admin, "users", "list")).splitlines()
        assert [line.split()[:2] for line in table] == [["NAME", "ADMIN"], ["admin", "yes"], ["alice", "no"]]

        denied = tl(server, alice, "users", "list")
        assert denied.returncode != 0
        assert "only admins" in denied.stderr
        refused = tl(server, WRONG_TOKEN, "experiments", "list")
        assert refused.returncode != 0
        assert refused.stderr.strip() == "tracklane: error: the token is unknown, expired or revoked"

        ok(tl(server, admin, "tokens", "revoke", created["token"]["token_id"]))
        revoked = tl(server, alice, "experiments", "list")
        assert revoked.returncode != 0
        assert "unknown, expired or revoked" in revoked.stderr

        promoted = json.loads(
            ok(tl(server, admin, "users", "update", "alice", "--admin", "--output", "json"))
        )
        assert promoted["is_admin"] is True
        last = tl(server, admin, "users", "delete", "admin")
        assert last.returncode == 0, "alice is an admin too, so admin may go"
        assert tl(server, admin, "experiments", "list").returncode != 0  # its token went with it
        server.terminate()
        first_log = server.log

    written = token_file.stat()
    with start_server("--auth", "true", "--log-level", "DEBUG", data_dir=data) as again:
        # Users exist: no second bootstrap, the file is left as it was.
        assert token_file.stat().st_mtime_ns == written.st_mtime_ns
        assert token_file.read_text().strip() == admin
        assert "created user" not in again.log
        again.terminate()
        second_log = again.log
    assert "tracklane_server.rpc" in first_log  # DEBUG: every call was logged, with its metadata at hand
    for log in (first_log, second_log):
        for secret in secrets_seen:
            assert secret not in log
            assert secret[4:] not in log


def test_bootstrap_from_the_environment_writes_no_file(tmp_path: Path) -> None:
    token = "tlk_automation-supplied-token-0123456789"
    data = tmp_path / "data"
    with start_server(
        "--auth", "true", data_dir=data, env={"TRACKLANE_AUTH_BOOTSTRAP_TOKEN": token}
    ) as server:
        assert (
            json.loads(ok(tl(server, token, "users", "list", "--output", "json")))["users"][0]["name"]
            == "admin"
        )
        assert not (data / "admin-token").exists()
        assert token not in server.log
        server.terminate()


def test_a_short_bootstrap_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    result = subprocess.run(
        server_argv("--auth", "true", data_dir=tmp_path),
        capture_output=True,
        text=True,
        env=clean_env({"TRACKLANE_AUTH_BOOTSTRAP_TOKEN": "short-secret"}),
        timeout=60,
    )
    assert result.returncode == 2
    assert "auth_bootstrap_token: a token must have 32 to 1024 characters" in result.stderr
    assert "short-secret" not in result.stderr


def test_a_public_address_without_auth_is_refused_before_binding(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: even a broken check could not bind it.
    result = subprocess.run(
        server_argv(data_dir=tmp_path, bind="192.0.2.1:0", http_bind=None),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("tracklane: error: --bind 192.0.2.1:0 is reachable from other machines")
    assert "--allow-public-without-auth true" in result.stderr
    assert not (tmp_path / "tracklane.db").exists()  # refused before opening anything


def test_workers_starting_together_bootstrap_one_admin(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    # Four processes import the server (spawn); on a busy machine (load 20+) that took over 30 s.
    with start_server(
        "--workers",
        "3",
        "--auth",
        "true",
        data_dir=data,
        bind=f"127.0.0.1:{port}",
        http_bind="none",
        ready_timeout=180,
    ) as server:
        deadline = time.monotonic() + 180
        while len(server.listening_lines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.listening_lines()) == 3, server.log
        admin = (data / "admin-token").read_text().strip()
        assert [p.name for p in data.iterdir() if "admin-token" in p.name] == ["admin-token"]  # no leftovers
        assert server.log.count("created user 'admin'") == 1
        # Separate connections land on any worker: each knows the one admin token.
        for _ in range(6):
            with tracklane.Client(f"grpc://127.0.0.1:{port}", token=admin) as client:
                assert [e.name for e in client.search_experiments()] == ["Default"]
        assert server.terminate(timeout=30) == 0, server.log
