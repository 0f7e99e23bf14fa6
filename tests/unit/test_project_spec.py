"""The MLproject file and project sources: parsing, parameter types, commands, defaults (pure code)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from tracklane.exceptions import InvalidArgument
from tracklane.projects import environments, sources, spec
from tracklane.projects.errors import ExecutionException


def _project(tmp_path: Path, text: str, name: str = "MLproject", **files: str) -> spec.Project:
    (tmp_path / name).write_text(text)
    for file, content in files.items():
        (tmp_path / file).write_text(content)
    return spec.load_project(tmp_path)


def test_file_name_is_case_insensitive_and_parameters_take_both_forms(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        "name: p\nentry_points:\n  main:\n    parameters:\n      a: float\n      b: {type: int, default: 3}\n"
        "      c: {default: x}\n    command: 'run {a} {b} {c}'\n",
        name="mlProject",
    )
    params = project.entry_points["main"].parameters
    assert params["a"] == spec.Parameter("a", "float", None)
    assert params["b"] == spec.Parameter("b", "int", 3)
    assert params["c"] == spec.Parameter("c", "string", "x")
    assert project.name == "p"


def test_values_are_quoted_and_undeclared_ones_appended(tmp_path: Path) -> None:
    data = tmp_path / "my data.csv"
    data.write_text("")
    entry = _project(
        tmp_path,
        "entry_points:\n  main:\n    parameters:\n      f: path\n      r: {type: float, default: 0.1}\n"
        "    command: 'python train.py -r {r} {f}'\n",
    ).get_entry_point("main")
    declared, extra = entry.resolve_parameters({"f": str(data), "x y": "$(rm -rf /)"})
    command = entry.command_line(declared, extra)
    assert shlex.split(command) == ["python", "train.py", "-r", "0.1", str(data), "--x y", "$(rm -rf /)"]


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("float", "abc", "'p' expects a float"),
        ("int", "1.5", "'p' expects an int"),
        ("int", "x", "expects an int"),
    ],
)
def test_typed_values_are_checked_naming_the_parameter(kind: str, value: str, message: str) -> None:
    entry = spec.EntryPoint("main", "echo {p}", {"p": spec.Parameter("p", kind)})
    with pytest.raises(InvalidArgument, match=message) as raised:
        entry.resolve_parameters({"p": value})
    assert raised.value.field == "parameters.p"


def test_missing_parameters_are_all_named() -> None:
    entry = spec.EntryPoint(
        "main", "echo {a} {b}", {"a": spec.Parameter("a"), "b": spec.Parameter("b", "path")}
    )
    with pytest.raises(InvalidArgument, match=r"'a', 'b'") as raised:
        entry.resolve_parameters({})
    assert raised.value.field == "parameters.a"


def test_paths_are_made_absolute_and_remote_ones_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.txt").write_text("")
    path = spec.Parameter("p", "path")
    assert path.resolve("d.txt", None) == str(tmp_path / "d.txt")
    assert path.resolve("s3://bucket/key", None) == "s3://bucket/key"  # for logging: left as given
    assert path.resolve("s3://bucket/key", lambda uri, name: f"/local/{name}") == "/local/p"
    with pytest.raises(InvalidArgument, match="no such file"):
        path.resolve("missing.txt", None)
    assert spec.Parameter("u", "uri").resolve("relative/dir", None) == str(tmp_path / "relative/dir")
    assert spec.Parameter("u", "uri").resolve("gs://b/o", None) == "gs://b/o"


def test_scripts_run_without_being_declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh")
    (tmp_path / "go.sh").write_text("")
    (tmp_path / "train.py").write_text("")
    project = spec.load_project(tmp_path)  # no MLproject at all
    assert project.get_entry_point("train.py").command == "python train.py"
    assert project.get_entry_point("go.sh").command == "/bin/zsh go.sh"
    with pytest.raises(ExecutionException, match="neither declared"):
        project.get_entry_point("main")
    with pytest.raises(ExecutionException, match="no such file"):
        project.get_entry_point("absent.py")


def test_environment_defaults_as_mlflow(tmp_path: Path) -> None:
    assert spec.load_project(tmp_path).env_type == spec.PYTHON
    assert spec.load_project(tmp_path).env_config_path is None
    (tmp_path / "conda.yaml").write_text("dependencies: []\n")
    assert spec.load_project(tmp_path).env_type == spec.CONDA
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    found = spec.load_project(tmp_path)
    assert (found.env_type, found.env_config_path) == (spec.PYTHON, tmp_path / "python_env.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("python_env: a.yaml\nconda_env: b.yaml\n", "at most one environment"),
        ("python_env: missing.yaml\n", "does not exist"),
        ("docker_env: {volumes: []}\n", "needs an image"),
        ("docker_env: {image: x, volumes: /a:/b}\n", "volumes must be a list"),
        ("docker_env: {image: x, environment: [[A]]}\n", "environment must list"),
        ("entry_points:\n  main: {}\n", "needs a command"),
        ("entry_points:\n  main:\n    parameters: {p: [1]}\n    command: x\n", "must be a type"),
        ("[not, a, mapping]\n", "mapping"),
    ],
)
def test_invalid_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ExecutionException, match=message):
        _project(tmp_path, text)


def test_unknown_placeholder_is_named() -> None:
    entry = spec.EntryPoint("main", "echo {nope}")
    with pytest.raises(ExecutionException, match=r"\{nope\}"):
        entry.command_line(*entry.resolve_parameters({}))


def test_subdirectories_may_not_climb_out() -> None:
    assert sources.split_subdirectory("https://h/r.git#a/b") == ("https://h/r.git", "a/b")
    with pytest.raises(ExecutionException, match="inside the project"):
        sources.split_subdirectory("repo#../etc")


def test_python_env_and_conda_specs(tmp_path: Path) -> None:
    (tmp_path / "python_env.yaml").write_text(
        "python: '3.8.15'\nbuild_dependencies: [pip]\ndependencies: [mlflow, 'scikit-learn==1.0.2']\n"
    )
    env = environments.PythonEnvSpec.from_python_env(tmp_path / "python_env.yaml")
    assert env == environments.PythonEnvSpec("3.8.15", ("pip",), ("mlflow", "scikit-learn==1.0.2"))
    (tmp_path / "conda.yaml").write_text("dependencies:\n  - python=3.10.4\n  - numpy\n  - pip:\n    - six\n")
    conda = environments.PythonEnvSpec.from_conda_yaml(tmp_path / "conda.yaml")
    assert conda == environments.PythonEnvSpec("3.10.4", (), ("six",))


def test_this_python_is_found_by_its_minor_version() -> None:
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    python, version = environments.find_python(f"{own}.0")
    assert python == sys.executable
    assert version.startswith(f"{own}.")
    with pytest.raises(ExecutionException, match=r"no Python 2\.6 is installed here"):
        environments.find_python("2.6")
