"""The recipe's own code in ``steps/``: resolving method names, importing it, hashing it.

A method is named bare (``transformer_fn``, looked up in the step's module, e.g. steps/transform.py)
or dotted (``steps.transform.transformer_fn``). A step's code hash covers the files of the modules
its methods live in and, transitively, every module of the recipe they import.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tracklane.recipes.errors import RecipeError

__all__ = ["code_digest", "load_function", "module_of", "user_code"]


def module_of(method: str, default_module: str | None) -> tuple[str, str]:
    """``(module, function)`` for a bare or dotted method name."""
    module, _, function = method.rpartition(".")
    if module:
        return module, function
    if default_module is None:
        raise RecipeError(f"method {method!r} must be dotted (module.function)")
    return default_module, function


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def code_digest(root: Path, modules: list[str]) -> str:
    """SHA-256 over the recipe files of ``modules`` and of what they import from the recipe.

    Files are named relative to ``root``, so a recipe moved elsewhere keeps its digests.
    """
    seen: dict[str, str] = {}
    pending = [f for f in (_module_file(root, m) for m in modules) if f is not None]
    for init in (root / "steps" / "__init__.py",):
        if init.is_file() and modules:
            pending.append(init)
    while pending:
        path = pending.pop()
        rel = path.relative_to(root).as_posix()
        if rel in seen:
            continue
        source = path.read_bytes()
        seen[rel] = hashlib.sha256(source).hexdigest()
        pending.extend(_imported_files(root, path, source))
    digest = hashlib.sha256()
    for rel in sorted(seen):
        digest.update(f"{rel}\0{seen[rel]}\n".encode())
    return digest.hexdigest()


def _imported_files(root: Path, path: Path, source: bytes) -> list[Path]:
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError:
        return []  # the step reports it when it imports the module
    package = path.parent.relative_to(root).parts
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                prefix = ".".join(base)
                module = ".".join(p for p in (prefix, node.module or "") if p)
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names if module)
    files = []
    for name in names:
        found = _module_file(root, name) if name else None
        if found is not None and root in found.parents:
            files.append(found)
    return files


def _purge_steps_modules() -> None:
    for name in [n for n in sys.modules if n == "steps" or n.startswith("steps.")]:
        del sys.modules[name]


@contextlib.contextmanager
def user_code(root: Path) -> Iterator[None]:
    """The recipe's ``steps`` package importable, freshly read from ``root``.

    Modules of another recipe (or of an earlier version of this one) are forgotten first, so
    two recipes in one process, or an edited step, never see stale code.
    """
    _purge_steps_modules()
    importlib.invalidate_caches()
    entry = str(root)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def load_function(method: str, default_module: str | None, what: str) -> Callable[..., Any]:
    """Imports the function a method name points at (inside ``user_code``).

    Raises:
        RecipeError: the module or the function does not exist.
    """
    module_name, function = module_of(method, default_module)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RecipeError(f"{what} {method!r}: module {module_name} not found ({exc})") from exc
    target = getattr(module, function, None)
    if not callable(target):
        raise RecipeError(f"{what} {method!r}: {module_name} has no function {function!r}")
    return target  # type: ignore[no-any-return]
