"""The server caps glibc's malloc arenas unless the operator chose a value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tracklane_server import memory


def test_glibc_accepts_the_cap() -> None:
    # In a child process: the cap must not change this test process's allocator.
    code = "from tracklane_server import memory; print(memory.limit_malloc_arenas())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={})
    assert out.stdout.strip() == "True"  # Debian's glibc


def test_the_operators_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_malloc_arenas() is False
