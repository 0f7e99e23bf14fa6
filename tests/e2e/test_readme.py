"""The README's Python example runs as written against a real server and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tracklane.testing import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs(tmp_path: Path) -> None:
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert example is not None, "README has no Python example"
    code = example.group(1)
    claimed = re.search(r"print\(.*\)\s*#\s*(.+)", code)
    assert claimed is not None, "the example's print should say what it prints"
    with LocalServer(tmp_path) as server:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace("grpc://127.0.0.1:50051", server.uri), "README.md", "exec"), {})
    assert out.getvalue().strip() == claimed.group(1).strip()
