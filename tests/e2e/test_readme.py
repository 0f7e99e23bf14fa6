"""The README's Python examples run as written against a real server and print what they say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tracklane import fluent
from tracklane.testing import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_readme_python_example_runs(tmp_path: Path, code: str) -> None:
    claimed = re.search(r"print\(.*\)\s*#\s*(.+)", code)
    fluent._reset()
    try:
        with LocalServer(tmp_path) as server:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code.replace("grpc://127.0.0.1:50051", server.uri), "README.md", "exec"), {})
    finally:
        fluent._reset()
    if claimed:
        assert out.getvalue().strip() == claimed.group(1).strip()
