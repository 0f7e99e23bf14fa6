"""Running the ``tracklane`` command as a user does: a child process, no stdin, the caller's own
TRACKLANE_* settings removed."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.servers import clean_env, tracklane_executable

__all__ = ["cli", "cli_json"]


def cli(
    uri: str, *args: str, ok: bool = True, stdout: int | None = subprocess.PIPE, token: str = ""
) -> subprocess.CompletedProcess[str]:
    """``tracklane ARGS`` against ``uri`` (TRACKLANE_TRACKING_URI); asserts exit 0 unless ``ok`` is False."""
    extra = {"TRACKLANE_TRACKING_URI": uri} | ({"TRACKLANE_TRACKING_TOKEN": token} if token else {})
    result = subprocess.run(
        [tracklane_executable(), *args],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(extra),
        timeout=60,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def cli_json(uri: str, *args: str) -> Any:
    """``tracklane ARGS --output json``, parsed."""
    return json.loads(cli(uri, *args, "--output", "json").stdout)
