"""The ``MLproject`` file, read as MLflow reads it, and entry-point commands built from it.

    name: My Project
    python_env: python_env.yaml        # or conda_env: conda.yaml, or docker_env: {image: ...}
    entry_points:
      main:
        parameters:
          data_file: path
          regularization: {type: float, default: 0.1}
        command: "python train.py -r {regularization} {data_file}"

The file is found case-insensitively; at most one environment is declared. Without one, a
``python_env.yaml`` or ``conda.yaml`` beside the file is used, else an environment with Python
only. Any ``.py`` or ``.sh`` file of the project runs as an entry point without being declared.
Parameter types: ``string`` (unknown types too, as in MLflow), ``float`` and ``int`` (checked),
``path`` (made absolute; remote URIs downloaded) and ``uri``. Values are shell-quoted into the
command; parameters the entry point does not declare are appended as ``--key value``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tracklane.exceptions import InvalidArgument
from tracklane.projects.errors import ExecutionException

__all__ = ["DOCKER", "ENV_TYPES", "EntryPoint", "Parameter", "Project", "load_project"]

MLPROJECT_FILE_NAME = "mlproject"
PYTHON_ENV_FILE_NAME = "python_env.yaml"
CONDA_ENV_FILE_NAME = "conda.yaml"
PYTHON, CONDA, DOCKER = "python_env", "conda_env", "docker_env"
ENV_TYPES = (PYTHON, CONDA, DOCKER)
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Parameter:
    """One declared parameter of an entry point."""

    name: str
    type: str = "string"
    default: Any = None

    @classmethod
    def from_yaml(cls, name: str, value: Any) -> Parameter:
        if isinstance(value, str):
            return cls(name, value)
        if isinstance(value, Mapping):
            return cls(name, str(value.get("type", "string")), value.get("default"))
        raise ExecutionException(
            f"MLproject: parameter {name!r} must be a type or {{type, default}}, not {value!r}",
            field=f"parameters.{name}",
        )

    def resolve(self, value: Any, download: Callable[[str, str], str] | None) -> str:
        """The value to substitute: checked for its type, paths made absolute (or downloaded)."""
        text = str(value)
        if self.type == "float":
            try:
                float(text)
            except ValueError:
                raise _bad(self.name, f"expects a float, got {text!r}") from None
        elif self.type == "int":
            try:
                int(text)
            except ValueError:
                raise _bad(self.name, f"expects an int, got {text!r}") from None
        elif self.type in ("path", "uri"):
            if _is_remote(text):
                if self.type == "path" and download is not None:
                    return download(text, self.name)
                return text
            local = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
            if self.type == "path" and not os.path.exists(local):
                raise _bad(self.name, f"got {text!r}, but no such file or folder exists")
            return local
        return text


def _is_remote(text: str) -> bool:
    return bool(_URI.match(text)) and not text.startswith("file:")


def _bad(name: str, what: str) -> InvalidArgument:
    return InvalidArgument(f"parameter {name!r} {what}", field=f"parameters.{name}")


@dataclass(frozen=True)
class EntryPoint:
    """A command of the project with its declared parameters."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def check_parameters(self, given: Mapping[str, Any]) -> None:
        """Raises InvalidArgument naming every required parameter that has no value."""
        missing = [n for n, p in self.parameters.items() if n not in given and p.default is None]
        if missing:
            names = ", ".join(repr(n) for n in missing)
            raise InvalidArgument(
                f"no value given for required parameter(s) {names} of entry point {self.name!r}: "
                f"pass -P {missing[0]}=VALUE",
                field=f"parameters.{missing[0]}",
            )

    def resolve_parameters(
        self, given: Mapping[str, Any], download: Callable[[str, str], str] | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(declared, extra) parameter values; declared ones typed and defaulted.

        Args:
            given: What the user passed (``-P``).
            download: Fetches a remote ``path`` value to a local file (uri, parameter name) -> path;
                None leaves remote values as they are (for logging).

        Raises:
            InvalidArgument: A required parameter is missing, or a value is not of its type.
        """
        self.check_parameters(given)
        declared = {
            name: param.resolve(given.get(name, param.default), download)
            for name, param in self.parameters.items()
        }
        extra = {str(k): str(v) for k, v in given.items() if k not in self.parameters}
        return declared, extra

    def command_line(self, declared: Mapping[str, str], extra: Mapping[str, str]) -> str:
        """The shell command: values shell-quoted into the template, extras as ``--key value``."""
        quoted = {k: shlex.quote(v) for k, v in declared.items()}
        try:
            command = self.command.format(**quoted)
        except KeyError as exc:
            raise ExecutionException(
                f"MLproject: the command of entry point {self.name!r} uses {{{exc.args[0]}}}, "
                "which is not among its parameters",
                field=f"entry_points.{self.name}.command",
            ) from None
        except (ValueError, IndexError) as exc:
            raise ExecutionException(
                f"MLproject: the command of entry point {self.name!r} is not a valid template: {exc}",
                field=f"entry_points.{self.name}.command",
            ) from None
        tail = [f"--{shlex.quote(k)} {shlex.quote(v)}" for k, v in extra.items()]
        return " ".join([command, *tail])


@dataclass(frozen=True)
class Project:
    """A loaded project folder: its name, environment and entry points."""

    directory: Path
    name: str | None
    env_type: str  # one of ENV_TYPES
    env_config_path: Path | None  # python_env.yaml or conda.yaml, when there is one
    docker_env: dict[str, Any] | None
    entry_points: dict[str, EntryPoint]

    def get_entry_point(self, name: str) -> EntryPoint:
        """The declared entry point, or a ``.py``/``.sh`` file of the project run as one.

        Raises:
            ExecutionException: Neither declared nor a runnable script of the project.
        """
        if name in self.entry_points:
            return self.entry_points[name]
        runners = {".py": "python", ".sh": os.environ.get("SHELL") or "bash"}
        suffix = os.path.splitext(name)[1]
        if suffix in runners:
            if not (self.directory / name).is_file():
                raise ExecutionException(
                    f"entry point {name!r}: no such file in the project {self.directory}",
                    field="entry_point",
                )
            return EntryPoint(name, f"{runners[suffix]} {shlex.quote(name)}")
        declared = ", ".join(sorted(self.entry_points)) or "none declared"
        raise ExecutionException(
            f"entry point {name!r} is neither declared in MLproject ({declared}) nor a .py or .sh file",
            field="entry_point",
        )


def find_mlproject(directory: Path) -> Path | None:
    """The MLproject file of a folder, whatever its case."""
    for entry in sorted(os.listdir(directory)):
        if entry.lower() == MLPROJECT_FILE_NAME and (directory / entry).is_file():
            return directory / entry
    return None


def load_project(directory: str | os.PathLike[str]) -> Project:
    """Reads a project folder (with or without an MLproject file).

    Raises:
        ExecutionException: The file is not valid YAML, declares two environments, names an
            environment file that does not exist, or a docker_env without an image.
    """
    root = Path(directory).resolve()
    path = find_mlproject(root)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ExecutionException(f"{path.name} is not valid YAML: {exc}", field="MLproject") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ExecutionException(f"{path.name} must be a mapping at its top level", field="MLproject")
        data = loaded or {}
    envs = [key for key in ENV_TYPES if key in data]
    if len(envs) > 1:
        raise ExecutionException(
            f"MLproject declares {' and '.join(envs)}: a project has at most one environment",
            field=envs[1],
        )
    entry_points = {}
    for name, body in (data.get("entry_points") or {}).items():
        if not isinstance(body, Mapping) or not body.get("command"):
            raise ExecutionException(
                f"MLproject: entry point {name!r} needs a command", field=f"entry_points.{name}.command"
            )
        params = {str(k): Parameter.from_yaml(str(k), v) for k, v in (body.get("parameters") or {}).items()}
        entry_points[str(name)] = EntryPoint(str(name), str(body["command"]), params)
    name = data.get("name")
    project_name = None if name is None else str(name)
    if DOCKER in data:
        return Project(root, project_name, DOCKER, None, _docker_env(data[DOCKER]), entry_points)
    for key in (PYTHON, CONDA):
        if data.get(key):
            env_path = root / str(data[key])
            if not env_path.is_file():
                raise ExecutionException(
                    f"MLproject names {key} {data[key]!r}, but {env_path} does not exist", field=key
                )
            return Project(root, project_name, key, env_path, None, entry_points)
    for key, file_name in ((PYTHON, PYTHON_ENV_FILE_NAME), (CONDA, CONDA_ENV_FILE_NAME)):
        if (root / file_name).is_file():
            return Project(root, project_name, key, root / file_name, None, entry_points)
    return Project(root, project_name, PYTHON, None, None, entry_points)


def _docker_env(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not value.get("image"):
        raise ExecutionException("MLproject: docker_env needs an image", field="docker_env.image")
    volumes = value.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, str) for v in volumes):
        raise ExecutionException(
            "MLproject: docker_env.volumes must be a list of strings, e.g. ['/data:/data']",
            field="docker_env.volumes",
        )
    environment = value.get("environment") or []
    ok = isinstance(environment, list) and all(
        isinstance(e, str) or (isinstance(e, list) and len(e) == 2) for e in environment
    )
    if not ok:
        raise ExecutionException(
            "MLproject: docker_env.environment must list names to copy from the host or "
            "[NAME, value] pairs, e.g. [['NEW_VAR', 'x'], 'VAR_FROM_HOST']",
            field="docker_env.environment",
        )
    return {"image": str(value["image"]), "volumes": list(volumes), "environment": list(environment)}
