"""Where a served model runs: this interpreter (``local``), or an environment made from the model's
own requirements (``uv``/``virtualenv`` with uv, ``conda`` when conda is installed).

An environment is built once and kept under ``TRACKLANE_ENV_ROOT`` (default
``~/.cache/tracklane/envs``) in a folder named by a hash of what went into it: the model's
``python_env.yaml`` and ``requirements.txt`` (or ``conda.yaml``) and the Tracklane client being
installed into it. The model's own ``tracklane`` requirement is replaced by this client (the same
version, from the same source), with its ``serving`` extra, so the workers run the same code.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from tracklane.exceptions import FailedPrecondition
from tracklane.models.environment import PYTHON_ENV_FILE_NAME, REQUIREMENTS_FILE_NAME

__all__ = ["ENV_MANAGERS", "env_root", "prepare_python", "tracklane_requirement"]

ENV_MANAGERS = ("local", "uv", "virtualenv", "conda")
CONDA_FILE_NAME = "conda.yaml"
_OWN_NAMES = ("tracklane", "mlflow", "mlflow-skinny")  # served by this client instead


def env_root() -> Path:
    """The folder holding the built environments."""
    default = Path.home() / ".cache" / "tracklane" / "envs"
    return Path(os.environ.get("TRACKLANE_ENV_ROOT", default))


def uv_binary() -> str:
    """The ``uv`` executable: the one the ``uv`` package installed, else one on PATH."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return str(uv.find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        raise FailedPrecondition(
            "--env-manager uv needs uv: pip install 'tracklane[serving]' (or uv from your package manager)",
            field="env_manager",
        )
    return found


def tracklane_requirement() -> str:
    """How to install this very client elsewhere: its source folder when installed from one."""
    version = importlib.metadata.version("tracklane")
    # Every metadata folder named tracklane (a source checkout's egg-info on sys.path too): the
    # installed one records where it came from.
    for dist in importlib.metadata.distributions(name="tracklane"):
        direct = dist.read_text("direct_url.json")
        url = json.loads(direct).get("url", "") if direct else ""
        if url.startswith("file://"):
            return f"tracklane[serving] @ {url}"
    return f"tracklane[serving]=={version}"


def _client_fingerprint() -> str:
    """Changes whenever the client's code does (an editable install's source too)."""
    digest = hashlib.sha256(tracklane_requirement().encode())
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_requirements(model_dir: str) -> list[str]:
    """The model's requirements.txt lines, without comments and without the Tracklane/MLflow ones."""
    path = Path(model_dir) / REQUIREMENTS_FILE_NAME
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.replace("_", "-").split("[", 1)[0]
        for sep in "=<>!~; @":
            name = name.split(sep, 1)[0]
        if name.strip().lower() in _OWN_NAMES:
            continue
        out.append(line)
    return out


def python_version(model_dir: str) -> str | None:
    """``major.minor`` from python_env.yaml, when the model says."""
    path = Path(model_dir) / PYTHON_ENV_FILE_NAME
    if not path.is_file():
        return None
    version = str((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("python") or "")
    return ".".join(version.split(".")[:2]) or None


def prepare_python(model_dir: str, env_manager: str, extra_requirements: Sequence[str] | None = None) -> str:
    """The interpreter to serve ``model_dir`` with, building its environment when needed.

    Args:
        model_dir: The local model folder.
        env_manager: One of ENV_MANAGERS.
        extra_requirements: Installed on top of the model's (uv and virtualenv only).

    Raises:
        FailedPrecondition: an unknown manager, conda or uv missing, or the build failed.
    """
    if env_manager == "local":
        return sys.executable
    if env_manager in ("uv", "virtualenv"):
        return _uv_env(model_dir, list(extra_requirements or []))
    if env_manager == "conda":
        return _conda_env(model_dir)
    raise FailedPrecondition(
        f"--env-manager {env_manager!r}: use one of {', '.join(ENV_MANAGERS)}", field="env_manager"
    )


def _key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def _building(name: str) -> Iterator[tuple[Path, bool]]:
    """The environment's folder, and whether it still has to be built; one builder at a time."""
    root = env_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `serve` of the same model waits, then reuses
        yield target, not (target / ".complete").exists()


def _run(cmd: list[str], what: str) -> None:
    print(f"tracklane: {what}", file=sys.stderr, flush=True)
    result = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise FailedPrecondition(f"{what} failed (exit {result.returncode}): {' '.join(cmd[:4])} ...")


def _uv_env(model_dir: str, extra_requirements: list[str]) -> str:
    uv = uv_binary()
    version = python_version(model_dir) or f"{sys.version_info.major}.{sys.version_info.minor}"
    requirements = model_requirements(model_dir) + extra_requirements
    key = _key("uv", version, *requirements, _client_fingerprint())
    with _building(f"uv-{key}") as (target, build):
        python = target / "bin" / "python"
        if not build:
            return str(python)
        shutil.rmtree(target, ignore_errors=True)
        _run(
            [uv, "venv", "--quiet", "--python", version, "--no-python-downloads", str(target)],
            f"creating a Python {version} environment in {target}",
        )
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                *requirements,
                tracklane_requirement(),
            ],
            f"installing the model's {len(requirements)} requirement(s) and tracklane with uv",
        )
        (target / ".complete").write_text(json.dumps({"python": version, "requirements": requirements}))
        return str(python)


def _conda_env(model_dir: str) -> str:
    conda = shutil.which("conda") or shutil.which("mamba") or shutil.which("micromamba")
    if conda is None:
        raise FailedPrecondition(
            "--env-manager conda needs conda on PATH (install Miniforge); or use --env-manager uv",
            field="env_manager",
        )
    spec = Path(model_dir) / CONDA_FILE_NAME
    if not spec.is_file():
        raise FailedPrecondition(
            f"the model has no {CONDA_FILE_NAME}; use --env-manager uv", field="env_manager"
        )
    key = _key("conda", spec.read_text(encoding="utf-8"), _client_fingerprint())
    with _building(f"conda-{key}") as (target, build):
        python = target / "bin" / "python"
        if build:
            shutil.rmtree(target, ignore_errors=True)
            _run(
                [conda, "env", "create", "--yes", "--prefix", str(target), "--file", str(spec)],
                f"creating a conda environment in {target}",
            )
            _run(
                [str(python), "-m", "pip", "install", "--quiet", tracklane_requirement()],
                "installing tracklane into it",
            )
            (target / ".complete").write_text("{}")
        return str(python)
