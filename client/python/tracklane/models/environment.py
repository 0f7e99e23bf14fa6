"""What a model needs to load: ``requirements.txt`` and ``python_env.yaml``, as MLflow writes them.

``python_env.yaml`` names the Python version and the build tools, and installs ``requirements.txt``,
so ``python -m venv env && env/bin/pip install -r requirements.txt`` recreates the environment.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from collections.abc import Iterable, Sequence

import yaml

__all__ = [
    "PYTHON_ENV_FILE_NAME",
    "REQUIREMENTS_FILE_NAME",
    "pinned",
    "read_requirements",
    "write_environment",
]

REQUIREMENTS_FILE_NAME = "requirements.txt"
PYTHON_ENV_FILE_NAME = "python_env.yaml"


def pinned(distribution: str) -> str:
    """``name==installed version``, or the bare name when it is not installed."""
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return distribution


def write_environment(
    model_dir: str,
    default_requirements: Iterable[str],
    pip_requirements: Sequence[str] | None = None,
    extra_pip_requirements: Sequence[str] | None = None,
) -> list[str]:
    """Writes requirements.txt and python_env.yaml into ``model_dir``.

    Args:
        model_dir: The model folder.
        default_requirements: What the flavor needs (used when ``pip_requirements`` is None).
        pip_requirements: Replaces the defaults entirely.
        extra_pip_requirements: Added to the defaults (or to ``pip_requirements``).

    Returns:
        The requirements written, in order, without duplicates.
    """
    base = list(default_requirements) if pip_requirements is None else list(pip_requirements)
    requirements = list(dict.fromkeys([*base, *(extra_pip_requirements or [])]))
    with open(os.path.join(model_dir, REQUIREMENTS_FILE_NAME), "w", encoding="utf-8") as out:
        out.write("".join(f"{line}\n" for line in requirements))
    env = {
        "python": platform.python_version(),
        "build_dependencies": [pinned("pip"), pinned("setuptools"), pinned("wheel")],
        "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"],
    }
    with open(os.path.join(model_dir, PYTHON_ENV_FILE_NAME), "w", encoding="utf-8") as out:
        yaml.safe_dump(env, out, default_flow_style=False, sort_keys=False)
    return requirements


def read_requirements(model_dir: str) -> list[str]:
    """The requirements of a model folder (empty when it has no requirements.txt)."""
    path = os.path.join(model_dir, REQUIREMENTS_FILE_NAME)
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as src:
        return [line.strip() for line in src if line.strip() and not line.lstrip().startswith("#")]
