"""``tracklane.projects.run``: MLflow's ``mlflow.projects.run`` over a Tracklane server.

Order of work: fetch the project, read its MLproject, check the entry point's parameters (a
missing or mistyped one fails here, before anything runs or is recorded), create the run with
MLflow's tags, hand it to the backend, which makes the environment and starts the entry point with
the run's variables; the params are sent while it starts. The entry point's own
``tracklane.start_run()`` (or ``mlflow.start_run()`` through the REST API) attaches to the run.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tracklane import fluent
from tracklane.client import Client
from tracklane.entities import Param, RunStatus
from tracklane.exceptions import InvalidArgument, NotFound
from tracklane.projects import environments, sources, spec
from tracklane.projects.backends import Launch, load_backend
from tracklane.projects.backends.base import Recorder
from tracklane.projects.errors import ExecutionException
from tracklane.projects.submitted_run import OUTPUT_ARTIFACT, OutputLog, SubmittedRun

__all__ = ["LOCK_ARTIFACT", "create_run", "run", "wait_for"]

LOCK_ARTIFACT = "project/requirements.lock"


def run(
    uri: str | None = None,
    entry_point: str | None = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    docker_args: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    backend: str = "local",
    backend_config: Mapping[str, Any] | str | None = None,
    storage_dir: str | None = None,
    synchronous: bool = True,
    run_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    build_image: bool = False,
    docker_auth: Mapping[str, Any] | None = None,
    *,
    from_run: str | None = None,
    tracking_uri: str | None = None,
    echo: bool = True,
) -> SubmittedRun:
    """Runs an MLflow project (an ``MLproject`` folder, git repository or zip) as a Tracklane run.

    Args:
        uri: A local folder, a git URI (``https://``, ``git@``, ``file://``; ``#subdir`` for a
            subfolder) or a ``.zip``. Optional with ``from_run`` (its source is used).
        entry_point: A declared entry point, or a ``.py``/``.sh`` file of the project.
        version: For git projects: a commit, tag or branch.
        parameters: Values for the entry point; undeclared ones are passed as ``--key value``.
        docker_args: Extra ``docker run`` flags for docker_env projects (``{"gpus": "all"}``).
        experiment_name: Experiment for the run (created when missing).
        experiment_id: Or its id. Default: the fluent API's experiment, else "0".
        backend: ``local`` or ``ray``.
        backend_config: A dict, or a path to a JSON file, or JSON text (``{"address": ...}`` for Ray).
        storage_dir: Where remote ``path`` parameters are downloaded and the output log is kept.
        synchronous: Wait for the run to end (raising ExecutionException when it did not finish).
        run_id: Use this existing run instead of creating one (as ``mlflow run --run-id``).
        run_name: The run's name.
        env_manager: ``local``, ``uv``, ``virtualenv`` (made with uv), ``conda`` or ``docker``;
            default from the project (python_env -> virtualenv, conda_env -> conda, docker_env ->
            docker).
        build_image: For docker_env: build an image with the project inside instead of mounting it.
        docker_auth: Not supported (log in with ``docker login`` / ``podman login`` beforehand).
        from_run: Reproduce that run: its source, commit, entry point and params by default, and
            its environment exactly (from the lock it logged).
        tracking_uri: The server; default the fluent API's (``$TRACKLANE_TRACKING_URI``).
        echo: Copy the entry point's output to this process's stdout/stderr.

    Returns:
        The SubmittedRun (``run_id``, ``wait()``, ``get_status()``, ``cancel()``).

    Raises:
        InvalidArgument: A required parameter is missing or a value is not of its type (``field``
            names it: ``parameters.NAME``).
        ExecutionException: The project cannot run (MLproject, entry point, environment), or a
            synchronous run did not finish.
    """
    prepared = _prepare(
        uri,
        entry_point,
        version,
        parameters,
        experiment_name,
        experiment_id,
        backend,
        backend_config,
        run_id,
        run_name,
        env_manager,
        docker_auth,
        from_run,
        tracking_uri,
    )
    storage = Path(tempfile.mkdtemp(prefix="tracklane-run-", dir=_made(storage_dir)))
    output = OutputLog(storage / os.path.basename(OUTPUT_ARTIFACT), echo=echo)
    p = prepared
    try:
        download = None
        if backend == "local":
            download = lambda u, name: sources.download_uri(u, storage / name, p.tracking_uri)  # noqa: E731
        declared, extra = p.entry.resolve_parameters(p.given, download)
        launch = Launch(
            run_id=p.run_id,
            experiment_id=p.experiment_id,
            tracking_uri=p.tracking_uri,
            project=p.project,
            source=p.source,
            command=p.entry.command_line(declared, extra),
            run_env=_run_env(p.run_id, p.experiment_id, p.tracking_uri),
            env_manager=p.manager,
            env_spec=_env_spec(p.project),
            output=output,
            record=p.recorder,
            lock=p.lock,
            backend_config=p.backend_config,
            docker_args=dict(docker_args or {}),
            build_image=build_image,
        )
        submitted = load_backend(backend).submit(launch)
    except BaseException as exc:
        _fail_before_start(p.recorder, output, p.run_id, exc)
        raise
    if synchronous:
        wait_for(submitted)
    return submitted


def create_run(
    uri: str | None = None,
    entry_point: str | None = "main",
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    backend: str = "local",
    run_name: str | None = None,
    env_manager: str | None = None,
    *,
    from_run: str | None = None,
    tracking_uri: str | None = None,
) -> str:
    """Everything ``run`` does before the entry point starts (checks, the run, its params and tags):
    for ``tracklane run --no-wait``, whose detached runner is then given the run id.

    Returns:
        The new run's id.
    """
    prepared = _prepare(
        uri,
        entry_point,
        version,
        parameters,
        experiment_name,
        experiment_id,
        backend,
        None,
        None,
        run_name,
        env_manager,
        None,
        from_run,
        tracking_uri,
    )
    prepared.recorder.finish()
    return prepared.run_id


@dataclass
class _Prepared:
    client: Client
    tracking_uri: str
    run_id: str
    experiment_id: str
    source: sources.Source
    project: spec.Project
    entry: spec.EntryPoint
    given: dict[str, Any]
    manager: str
    lock: tuple[str, str] | None
    backend_config: dict[str, Any]
    recorder: Recorder


def _prepare(
    uri: str | None,
    entry_point: str | None,
    version: str | None,
    parameters: Mapping[str, Any] | None,
    experiment_name: str | None,
    experiment_id: str | None,
    backend: str,
    backend_config: Mapping[str, Any] | str | None,
    run_id: str | None,
    run_name: str | None,
    env_manager: str | None,
    docker_auth: Mapping[str, Any] | None,
    from_run: str | None,
    tracking_uri: str | None,
) -> _Prepared:
    if docker_auth:
        raise ExecutionException("docker_auth: log in with docker/podman login first", field="docker_auth")
    config = _backend_config(backend_config)
    if env_manager is not None and env_manager not in environments.ENV_MANAGERS:
        raise InvalidArgument(
            f"--env-manager {env_manager!r}: use one of {', '.join(environments.ENV_MANAGERS)}",
            field="env_manager",
        )
    if experiment_name and experiment_id:
        raise InvalidArgument("give experiment_name or experiment_id, not both", field="experiment_id")
    tracking_uri = tracking_uri or fluent.get_tracking_uri()
    client = Client(tracking_uri)
    try:
        given = {str(k): v for k, v in (parameters or {}).items()}
        lock = None
        if from_run is not None:
            uri, version, entry_point, given, lock = _from_run(
                client, from_run, uri, version, entry_point, given
            )
            if env_manager is None and lock is not None:
                env_manager = client.get_run(from_run).data.tags.get("mlflow.project.env")
        if uri is None:
            raise InvalidArgument("give the project URI (or --from-run RUN_ID)", field="uri")
        entry_point = entry_point or "main"
        source = sources.fetch_project(uri, version)
        project = spec.load_project(source.work_dir)
        entry = project.get_entry_point(entry_point)
        declared, extra = entry.resolve_parameters(given)  # checks before anything runs
        manager = _env_manager(project, env_manager)
        if run_id is None:
            experiment = _experiment_id(client, experiment_name, experiment_id)
            run_id = _create_run(client, experiment, source, entry_point, manager, backend, run_name)
            params = [Param(k, v) for k, v in {**declared, **extra}.items()]
        else:
            experiment = client.get_run(run_id).info.experiment_id
            params = []
    except BaseException:
        client.close()
        raise
    recorder = Recorder(client, run_id)
    if params:
        recorder({}, None, params)
    return _Prepared(
        client,
        tracking_uri,
        run_id,
        experiment,
        source,
        project,
        entry,
        given,
        manager,
        lock,
        config,
        recorder,
    )


def wait_for(submitted: SubmittedRun) -> None:
    """Waits for the run; Ctrl-C cancels it (KILLED) and propagates.

    Raises:
        ExecutionException: The run ended FAILED or KILLED.
    """
    try:
        ok = submitted.wait()
    except KeyboardInterrupt:
        print(f"tracklane: interrupted: stopping run {submitted.run_id}", file=sys.stderr, flush=True)
        submitted.cancel()
        raise
    if not ok:
        raise ExecutionException(
            f"run {submitted.run_id} ended {submitted.get_status()}", run_id=submitted.run_id
        )


def _fail_before_start(recorder: Recorder, output: OutputLog, run_id: str, exc: BaseException) -> None:
    """The run was created but its entry point never started: record why and end it FAILED."""
    output.close()
    client = recorder.client
    try:
        recorder.join()
        client.log_bytes(run_id, f"{type(exc).__name__}: {exc}\n".encode(), OUTPUT_ARTIFACT)
        client.set_terminated(
            run_id, RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        )
    except Exception as error:  # the original error matters more
        print(f"tracklane: could not end run {run_id}: {error}", file=sys.stderr)
    finally:
        client.close()


def _made(folder: str | None) -> str | None:
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    return folder


def _backend_config(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    text = value
    if os.path.isfile(value):
        text = Path(value).read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            f"--backend-config {value!r}: neither a JSON file nor JSON ({exc})", field="backend_config"
        ) from None
    if not isinstance(loaded, dict):
        raise InvalidArgument("--backend-config must be a JSON object", field="backend_config")
    return loaded


def _env_manager(project: spec.Project, wanted: str | None) -> str:
    if project.env_type == spec.DOCKER:
        if wanted in (None, "docker", "local"):
            return wanted or "docker"
        raise ExecutionException(
            f"a docker_env project runs with --env-manager docker (or local), not {wanted}",
            field="env_manager",
        )
    if wanted == "docker":
        raise ExecutionException("--env-manager docker needs a docker_env in MLproject", field="env_manager")
    if wanted == "conda" and project.env_type == spec.PYTHON:
        raise ExecutionException(
            "a python_env project cannot run with conda: use --env-manager uv, virtualenv or local",
            field="env_manager",
        )
    if wanted is not None:
        return wanted
    return "conda" if project.env_type == spec.CONDA else "virtualenv"


def _env_spec(project: spec.Project) -> environments.PythonEnvSpec:
    path = project.env_config_path
    if path is None:
        return environments.PythonEnvSpec()
    if project.env_type == spec.CONDA:
        return environments.PythonEnvSpec.from_conda_yaml(path)
    return environments.PythonEnvSpec.from_python_env(path)


def _experiment_id(client: Client, name: str | None, experiment_id: str | None) -> str:
    if experiment_id:
        return str(experiment_id)
    name = name or os.environ.get(fluent.EXPERIMENT_NAME_ENV) or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        found_id = os.environ.get(fluent.EXPERIMENT_ID_ENV) or os.environ.get("MLFLOW_EXPERIMENT_ID")
        return found_id or fluent.DEFAULT_EXPERIMENT_ID
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _create_run(
    client: Client,
    experiment_id: str,
    source: sources.Source,
    entry_point: str,
    manager: str,
    backend: str,
    run_name: str | None,
) -> str:
    user = _user()
    tags = {
        "mlflow.source.type": "PROJECT",
        "mlflow.source.name": source.source_name,
        "mlflow.project.entryPoint": entry_point,
        "mlflow.project.backend": backend,
        "mlflow.project.env": manager,
        "mlflow.user": user,
    }
    for key, value in (
        ("mlflow.source.git.commit", source.git_commit),
        ("mlflow.source.git.repoURL", source.git_repo_url),
        ("mlflow.source.git.branch", source.git_branch),
    ):
        if value:
            tags[key] = value
    parent = fluent.active_run()
    return client.create_run(
        experiment_id,
        tags=tags,
        run_name=run_name,
        parent_run_id=parent.info.run_id if parent is not None else None,
        user_id=user,
    ).info.run_id


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def _run_env(run_id: str, experiment_id: str, tracking_uri: str) -> dict[str, str]:
    """What the entry point gets: Tracklane's variables, and MLflow's for code written for MLflow
    (its REST API is on the server's HTTP listener, port 5000 unless MLFLOW_TRACKING_URI says)."""
    parts = urlsplit(tracking_uri if "://" in tracking_uri else f"grpc://{tracking_uri}")
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if parts.scheme == "grpcs" else "http"
    env = {
        fluent.RUN_ID_ENV: run_id,
        "TRACKLANE_TRACKING_URI": tracking_uri,
        fluent.EXPERIMENT_ID_ENV: experiment_id,
        "MLFLOW_RUN_ID": run_id,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI") or f"{scheme}://{host}:5000",
        "PYTHONUNBUFFERED": "1",  # the output streams as it is written
    }
    token = os.environ.get("TRACKLANE_TRACKING_TOKEN")
    if token:
        env["TRACKLANE_TRACKING_TOKEN"] = token
    return env


def _from_run(
    client: Client,
    run_id: str,
    uri: str | None,
    version: str | None,
    entry_point: str | None,
    given: dict[str, Any],
) -> tuple[str | None, str | None, str | None, dict[str, Any], tuple[str, str] | None]:
    """The defaults and the environment lock of an earlier project run."""
    old = client.get_run(run_id)
    tags = old.data.tags
    if tags.get("mlflow.source.type") != "PROJECT":
        raise InvalidArgument(f"run {run_id} was not started by tracklane run / mlflow run", field="from_run")
    if uri is None:
        uri = tags.get("mlflow.source.name")
        version = version or tags.get("mlflow.source.git.commit")
    lock = None
    python = tags.get("tracklane.project.python")
    if "tracklane.project.lockHash" in tags and python:
        try:
            lock = (client.read_artifact(run_id, LOCK_ARTIFACT).decode(), python)
        except NotFound:
            lock = None
    if lock is None and tags.get("mlflow.project.env") in ("uv", "virtualenv"):
        raise ExecutionException(f"run {run_id} logged no environment lock to rebuild", field="from_run")
    return (
        uri,
        version,
        entry_point or tags.get("mlflow.project.entryPoint"),
        {**old.data.params, **given},
        lock,
    )
