"""Python environments for projects: ``uv`` (``virtualenv`` is the same, done with uv), ``conda``, ``local``.

An environment is built once from the project's ``python_env.yaml`` (or the pip part of its
``conda.yaml``) and kept under ``$TRACKLANE_PROJECTS_CACHE/envs`` in a folder named by a hash of
what went in: the Python version, the build dependencies and dependencies (with the content of
``-r`` files), and the Tracklane client installed into it. Later runs with the same spec reuse it.

The client of the runner's own version goes into every environment, so ``tracklane.start_run()`` in
the project attaches to the run:
  * an editable install of Tracklane (a source checkout, ``pip install -e``) is installed editable
    from the same source: the environment follows the developer's edits and never needs a rebuild
    for them;
  * a non-editable install from a source folder is built into a wheel once (cached by a hash of
    the sources) and installed from it;
  * otherwise ``tracklane==VERSION`` comes from the package index.

``uv pip freeze`` of the built environment is its lock; ``prepare_from_lock`` rebuilds exactly that
set of packages (``tracklane run --from-run``). Python interpreters are never downloaded: the one
asked for (major.minor; the patch level is not matched) must be on the machine: this interpreter,
a pyenv version, or any uv finds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from tracklane.projects.errors import ExecutionException
from tracklane.projects.sources import cache_root

__all__ = ["ENV_MANAGERS", "PreparedEnv", "PythonEnvSpec", "prepare", "prepare_from_lock", "uv_binary"]

ENV_MANAGERS = ("local", "uv", "virtualenv", "conda", "docker")
_CLIENT_NAMES = ("tracklane",)


@dataclass(frozen=True)
class PythonEnvSpec:
    """``python_env.yaml``: a Python version, build dependencies and dependencies (pip lines)."""

    python: str | None = None
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()

    @classmethod
    def from_python_env(cls, path: Path) -> PythonEnvSpec:
        data = _yaml_mapping(path)
        for key in ("build_dependencies", "dependencies"):
            if not isinstance(data.get(key) or [], list):
                raise ExecutionException(f"{path.name}: {key} must be a list", field=key)
        python = data.get("python")
        return cls(
            None if python is None else str(python),
            tuple(str(d) for d in data.get("build_dependencies") or ()),
            tuple(str(d) for d in data.get("dependencies") or ()),
        )

    @classmethod
    def from_conda_yaml(cls, path: Path) -> PythonEnvSpec:
        """Python and the pip dependencies of a conda environment file (conda packages are ignored)."""
        python: str | None = None
        pip: list[str] = []
        for dep in _yaml_mapping(path).get("dependencies") or []:
            if isinstance(dep, str):
                match = re.match(r"^python\s*[=<>!~]*=?\s*([\d.]+)", dep)
                if match:
                    python = match.group(1)
            elif isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                pip.extend(str(d) for d in dep["pip"])
        return cls(python, (), tuple(pip))

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "build_dependencies": list(self.build_dependencies),
            "dependencies": list(self.dependencies),
        }


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExecutionException(f"cannot read {path}: {exc}", field=path.name) from None
    if not isinstance(data, dict):
        raise ExecutionException(f"{path.name} must be a mapping", field=path.name)
    return data


@dataclass(frozen=True)
class PreparedEnv:
    """Where the entry point runs, and what to record about it."""

    manager: str
    bin_dir: Path  # put first on PATH, so that `python` in the command is the environment's
    python_version: str
    setup_seconds: float
    reused: bool
    lock: str | None = None  # `uv pip freeze` of the environment
    spec: PythonEnvSpec | None = None
    client_install: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def lock_hash(self) -> str | None:
        return None if self.lock is None else hashlib.sha256(self.lock.encode()).hexdigest()


def uv_binary() -> str:
    """The ``uv`` executable: the one of the ``uv`` package (the ``projects`` extra), else PATH's."""
    with contextlib.suppress(ImportError, FileNotFoundError):
        import uv

        return str(uv.find_uv_bin())
    found = shutil.which("uv")
    if found is None:
        raise ExecutionException(
            "--env-manager uv needs uv: pip install 'tracklane[projects]'", field="env_manager"
        )
    return found


def prepare(
    manager: str, spec: PythonEnvSpec, project_dir: Path, conda_file: Path | None = None
) -> PreparedEnv:
    """The environment for a project, built when no cached one matches.

    Args:
        manager: ``local``, ``uv``, ``virtualenv`` or ``conda``.
        spec: What the project declares.
        project_dir: The project (``-r`` files in dependencies are relative to it).
        conda_file: The project's conda.yaml, for ``conda``.

    Raises:
        ExecutionException: The Python version is not installed, conda or uv is missing, or an
            install failed (its output is on stderr).
    """
    started = time.monotonic()
    if manager == "local":
        version = ".".join(map(str, sys.version_info[:3]))
        return PreparedEnv("local", Path(sys.executable).parent, version, time.monotonic() - started, True)
    if manager == "conda":
        return _conda_env(conda_file, started)
    uv = uv_binary()
    python, version = find_python(spec.python)
    client = client_install()
    key = _key(
        "uv",
        version.rsplit(".", 1)[0],
        *spec.build_dependencies,
        "|",
        *spec.dependencies,
        *_requirement_files(spec.dependencies, project_dir),
        client.identity,
    )
    with _locked(f"uv-{key}") as (target, ready):
        if not ready:
            _build_uv(uv, python, target, spec, project_dir, client)
        lock = (target / "tracklane-lock.txt").read_text(encoding="utf-8")
    return PreparedEnv(
        manager, target / "bin", version, time.monotonic() - started, ready, lock, spec, client.how
    )


def prepare_from_lock(lock: str, python_version: str, project_dir: Path) -> PreparedEnv:
    """An environment with exactly the packages of ``lock`` (and this Tracklane client).

    Raises:
        ExecutionException: As for ``prepare``.
    """
    started = time.monotonic()
    uv = uv_binary()
    python, version = find_python(python_version)
    client = client_install()
    pinned = [line for line in lock.splitlines() if line.strip() and not _is_client_line(line, client)]
    key = _key("lock", version.rsplit(".", 1)[0], *pinned, client.identity)
    with _locked(f"lock-{key}") as (target, ready):
        if not ready:
            _build_uv(uv, python, target, PythonEnvSpec(version, (), tuple(pinned)), project_dir, client)
        frozen = (target / "tracklane-lock.txt").read_text(encoding="utf-8")
    return PreparedEnv(
        "uv", target / "bin", version, time.monotonic() - started, ready, frozen, None, client.how
    )


def _is_client_line(line: str, client: ClientInstall) -> bool:
    """Whether a requirement or freeze line is the Tracklane client (replaced by this runner's)."""
    text = line.strip()
    if text.startswith("-e"):  # freeze names editable installs by their folder only
        return client.source is not None and text.removeprefix("-e").strip() in (
            str(client.source),
            client.source.as_uri(),
        )
    name = re.split(r"[\s=<>!~@\[;]", text, maxsplit=1)[0]
    return name.lower().replace("_", "-") in _CLIENT_NAMES


def _requirement_files(dependencies: Sequence[str], project_dir: Path) -> list[str]:
    """The content of ``-r FILE`` dependencies, so that editing the file makes a new environment."""
    out = []
    for dep in dependencies:
        match = re.match(r"^-r\s*(\S+)$", dep.strip())
        if match:
            path = project_dir / match.group(1)
            out.append(path.read_text(encoding="utf-8") if path.is_file() else f"missing:{path}")
    return out


def _key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


@contextlib.contextmanager
def _locked(name: str) -> Iterator[tuple[Path, bool]]:
    """The environment folder and whether it is complete; one builder at a time per environment."""
    root = cache_root() / "envs"
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield target, (target / "tracklane-lock.txt").is_file()


def find_python(wanted: str | None) -> tuple[str, str]:
    """(interpreter, full version) for ``major.minor`` of ``wanted``; None: this interpreter's.

    Raises:
        ExecutionException: No such Python on this machine (nothing is downloaded).
    """
    own = ".".join(map(str, sys.version_info[:3]))
    if not wanted or _minor(wanted) == _minor(own):
        return sys.executable, own
    minor = _minor(wanted)
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv_root.is_dir():
        for candidate in sorted(pyenv_root.iterdir(), reverse=True):
            interpreter = candidate / "bin" / "python"
            if re.fullmatch(rf"{re.escape(minor)}\.\d+", candidate.name) and interpreter.exists():
                return str(interpreter), candidate.name
    result = subprocess.run(
        [uv_binary(), "python", "find", "--no-python-downloads", minor],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 and result.stdout.strip():
        python = result.stdout.strip()
        probe = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and _minor(probe.stdout.strip()) == minor:
            return python, probe.stdout.strip()
    raise ExecutionException(
        f"the project asks for Python {wanted}, and no Python {minor} is installed here (this one is "
        f"{own}); install it (uv python install {minor}, or pyenv install {minor}), change python: in "
        "python_env.yaml, or run with --env-manager local",
        field="python_env.python",
    )


def _minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


@dataclass(frozen=True)
class ClientInstall:
    """How this Tracklane client is installed into an environment."""

    args: list[str]  # for `uv pip install`
    identity: str  # part of the environment's key
    how: str  # for people: logged with the run
    source: Path | None = None  # the source folder of an editable install


def client_install() -> ClientInstall:
    """Editable from the source when installed editable, else a wheel of the source, else the index."""
    version = importlib.metadata.version("tracklane")
    for dist in importlib.metadata.distributions(name="tracklane"):
        direct = dist.read_text("direct_url.json")
        info = json.loads(direct) if direct else {}
        url = str(info.get("url", ""))
        if not url.startswith("file://"):
            continue
        source = Path(unquote(urlsplit(url).path))
        if (info.get("dir_info") or {}).get("editable"):
            return ClientInstall(["-e", str(source)], f"editable:{source}", f"editable from {source}", source)
        if (source / "pyproject.toml").is_file():
            wheel = _client_wheel(source)
            return ClientInstall([str(wheel)], f"wheel:{wheel.name}:{wheel.parent.name}", f"wheel {wheel}")
    return ClientInstall(
        [f"tracklane=={version}"], f"index:{version}", f"tracklane=={version} from the index"
    )


def _client_wheel(source: Path) -> Path:
    """A wheel of the client's source folder, built once per content of its sources."""
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        if path.suffix in (".py", ".c", ".pyi", ".toml") and ".venv" not in path.parts and path.is_file():
            digest.update(str(path.relative_to(source)).encode())
            digest.update(path.read_bytes())
    out = cache_root() / "wheels" / digest.hexdigest()[:20]
    wheels = sorted(out.glob("tracklane-*.whl"))
    if wheels:
        return wheels[-1]
    _run(
        [uv_binary(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(source)],
        "building a wheel of tracklane",
    )
    wheels = sorted(out.glob("tracklane-*.whl"))
    if not wheels:
        raise ExecutionException(f"building a wheel of the tracklane client in {source} made none")
    return wheels[-1]


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    print(f"tracklane: {what}", file=sys.stderr, flush=True)
    result = subprocess.run(cmd, cwd=cwd, stdout=sys.stderr, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise ExecutionException(f"{what} failed (exit {result.returncode}); its output is above")


def _build_uv(
    uv: str, python: str, target: Path, spec: PythonEnvSpec, project_dir: Path, client: ClientInstall
) -> None:
    shutil.rmtree(target, ignore_errors=True)
    env_python = str(target / "bin" / "python")
    try:
        _run(
            [uv, "venv", "--quiet", "--no-python-downloads", "--python", python, str(target)],
            f"creating a Python environment in {target}",
        )
        install = [uv, "pip", "install", "--quiet", "--python", env_python]
        if spec.build_dependencies:
            _run(
                [*install, *_pip_args(spec.build_dependencies)], "installing build dependencies", project_dir
            )
        deps = [d for d in spec.dependencies if not _is_client_line(d, client)]
        _run(
            [*install, *_pip_args(deps), *client.args],
            f"installing {len(deps)} dependencies and tracklane ({client.how}) with uv",
            project_dir,
        )
        frozen = subprocess.run(
            [uv, "pip", "freeze", "--python", env_python], capture_output=True, text=True, check=True
        ).stdout
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave a half-built environment to reuse
        raise
    # Written last: its presence marks the environment complete.
    (target / "tracklane-lock.txt").write_text(frozen, encoding="utf-8")


def _pip_args(requirements: Sequence[str]) -> list[str]:
    out: list[str] = []
    for requirement in requirements:
        match = re.match(r"^(-r|-c|-e)\s*(\S+)$", requirement.strip())
        out.extend([match.group(1), match.group(2)] if match else [requirement])
    return out


def _conda_env(conda_file: Path | None, started: float) -> PreparedEnv:
    home = os.environ.get("MLFLOW_CONDA_HOME")
    conda = str(Path(home) / "bin" / "conda") if home else shutil.which("conda") or shutil.which("mamba")
    if not conda or not os.path.exists(conda):
        raise ExecutionException(
            "--env-manager conda needs conda, which is not installed: install Miniforge, or use "
            "--env-manager uv (it installs the pip dependencies of conda.yaml)",
            field="env_manager",
        )
    if conda_file is None:
        raise ExecutionException("--env-manager conda needs a conda.yaml in the project", field="env_manager")
    client = client_install()
    key = _key("conda", conda_file.read_text(encoding="utf-8"), client.identity)
    with _locked(f"conda-{key}") as (target, ready):
        if not ready:
            shutil.rmtree(target, ignore_errors=True)
            _run(
                [
                    conda,
                    "env",
                    "create",
                    "--yes",
                    "--quiet",
                    "--prefix",
                    str(target),
                    "--file",
                    str(conda_file),
                ],
                f"creating a conda environment in {target}",
            )
            _run(
                [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", *client.args],
                "installing tracklane into it",
            )
            frozen = subprocess.run(
                [str(target / "bin" / "python"), "-m", "pip", "freeze"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            (target / "tracklane-lock.txt").write_text(frozen, encoding="utf-8")
        lock = (target / "tracklane-lock.txt").read_text(encoding="utf-8")
    version = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return PreparedEnv(
        "conda", target / "bin", version, time.monotonic() - started, ready, lock, None, client.how
    )
