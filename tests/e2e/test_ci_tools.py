""".ci/tools.sh: each pinned tool is built once per version into a folder of its own; a changed pin
builds anew beside the old build; a failed or mislabelled build is never taken for a cached one.

The shell functions run for real; `go` is a stand-in on PATH that records each install and writes a
binary labelled with the version it was asked for (the real `go install` of MinIO takes minutes:
CI runs it, these tests check what the script does around it).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAND_IN_GO = r"""#!/usr/bin/env bash
set -eu
case "$1" in
  install)
    echo "$2" >>"$GO_LOG"
    [[ ${GO_FAILS:-0} == 1 ]] && exit 1
    package=${2%@*}
    printf '#!/bin/sh\necho %s\n' "${GO_BUILDS_AS:-${2##*@}}" >"$GOBIN/${package##*/}"
    chmod +x "$GOBIN/${package##*/}"
    ;;
  version)  # go version -m FILE: the module line, as the real one prints it
    printf '%s: go1.26\n\tpath\tx\n\tmod\tx\t%s\th1:x=\n' "$3" "$("$3")"
    ;;
esac
"""


def grpcurl_binary(tmp_path: Path, version: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``grpcurl_binary`` from .ci/tools.sh with the pin set to ``version``."""
    bin_dir = tmp_path / "stand-in"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "go").write_text(STAND_IN_GO)
    (bin_dir / "go").chmod(0o755)
    script = f"CACHE={tmp_path}/cache; source {ROOT}/.ci/tools.sh; GRPCURL_VERSION={version}; grpcurl_binary"
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "GO_LOG": str(tmp_path / "go.log"), **env},
    )


def installs(tmp_path: Path) -> list[str]:
    log = tmp_path / "go.log"
    return log.read_text().split() if log.exists() else []


def test_built_once_per_version_and_a_new_pin_builds_beside_the_old(tmp_path: Path) -> None:
    first = grpcurl_binary(tmp_path, "v1.9.4")
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    assert path == tmp_path / "cache/tools/grpcurl@v1.9.4/grpcurl"
    assert subprocess.run([path], capture_output=True, text=True).stdout == "v1.9.4\n"
    again = grpcurl_binary(tmp_path, "v1.9.4")
    assert Path(again.stdout.strip()) == path
    assert installs(tmp_path) == ["github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"]  # cached

    changed = grpcurl_binary(tmp_path, "v1.9.3")
    assert Path(changed.stdout.strip()) == tmp_path / "cache/tools/grpcurl@v1.9.3/grpcurl"
    assert installs(tmp_path)[-1] == "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
    assert path.is_file()  # the other version's build is left alone (another checkout may use it)
    assert sorted(p.name for p in (tmp_path / "cache/tools").iterdir()) == [
        "grpcurl@v1.9.3",
        "grpcurl@v1.9.4",
    ]


def test_a_failed_or_mislabelled_build_is_not_cached(tmp_path: Path) -> None:
    failed = grpcurl_binary(tmp_path, "v1.9.4", GO_FAILS="1")
    assert failed.returncode != 0
    assert "go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 failed" in failed.stderr
    wrong = grpcurl_binary(tmp_path, "v1.9.4", GO_BUILDS_AS="v0.0.0-something-else")
    assert wrong.returncode != 0
    assert "grpcurl built as v0.0.0-something-else, expected v1.9.4" in wrong.stderr
    assert list((tmp_path / "cache/tools").iterdir()) == []  # no folder a later run could trust
    fixed = grpcurl_binary(tmp_path, "v1.9.4")
    assert fixed.returncode == 0, fixed.stderr
    assert len(installs(tmp_path)) == 3  # each attempt after a failure builds again


def test_ci_installs_no_tool_at_latest() -> None:
    """Every tool CI builds or installs names an exact version."""
    scripts = {name: (ROOT / ".ci" / name).read_text() for name in ("run", "services.sh", "tools.sh")}
    for name, text in scripts.items():
        code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert [line for line in code if "@latest" in line] == [], name
    pins = dict(re.findall(r"^(\w+_VERSION)=(\S+)$", scripts["tools.sh"], re.M))
    assert set(pins) == {"MINIO_VERSION", "GRPCURL_VERSION", "BUF_VERSION"}
    assert re.fullmatch(r"v0\.0\.0-\d{14}-[0-9a-f]{12}", pins["MINIO_VERSION"])  # a Go pseudo-version
    assert re.fullmatch(r"v\d+\.\d+\.\d+", pins["GRPCURL_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", pins["BUF_VERSION"])
