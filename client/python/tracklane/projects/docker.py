"""``docker_env`` projects: the entry point in a container of the project's image, with docker or podman.

The image is used as it is, with the project folder mounted at ``/mlflow/projects/code`` (the
working directory): nothing is built per run. ``--build-image`` builds an image with the project
copied in instead (``FROM image`` + ``COPY``), tagged ``NAME:COMMIT`` (or a content hash), and
reuses it while the project does not change. The run's variables (run id, tracking URI...) are
passed in; with a loopback tracking server the container shares the host's network so that it can
reach it. ``docker_env.volumes`` and ``environment`` are applied as MLflow does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracklane.projects.errors import ExecutionException

__all__ = ["WORKDIR", "ContainerImage", "container_engine", "docker_command", "image_tags", "prepare_image"]

WORKDIR = "/mlflow/projects/code"
ENGINE_ENV = "TRACKLANE_CONTAINER_ENGINE"


def container_engine() -> str:
    """docker when its daemon answers, else podman; ``$TRACKLANE_CONTAINER_ENGINE`` picks one.

    Raises:
        ExecutionException: Neither works here.
    """
    names = [os.environ[ENGINE_ENV]] if os.environ.get(ENGINE_ENV) else ["docker", "podman"]
    tried = []
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        probe = subprocess.run([path, "info"], capture_output=True, text=True, check=False, timeout=60)
        if probe.returncode == 0:
            return path
        tried.append(f"{name}: {(probe.stderr or probe.stdout).strip().splitlines()[-1:]}")
    detail = f" ({'; '.join(tried)})" if tried else ""
    raise ExecutionException(
        f"docker_env projects need docker with a running daemon, or podman{detail}: install one "
        "(apt-get install podman), or run with --env-manager local",
        field="env_manager",
    )


@dataclass(frozen=True)
class ContainerImage:
    engine: str
    uri: str
    image_id: str
    built: bool  # the project is inside (--build-image): nothing to mount


def _inspect(engine: str, image: str) -> str | None:
    result = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None if result.returncode == 0 else None


def prepare_image(
    docker_env: Mapping[str, Any], work_dir: Path, project_name: str | None, commit: str | None, build: bool
) -> ContainerImage:
    """The image to run: ``docker_env.image`` (pulled when missing), or one built with the project.

    Raises:
        ExecutionException: No engine, the image cannot be found or pulled, or the build failed.
    """
    engine = container_engine()
    base = str(docker_env["image"])
    if not build:
        found = _inspect(engine, base)
        if found is None:
            pulled = subprocess.run([engine, "pull", base], check=False)
            found = _inspect(engine, base) if pulled.returncode == 0 else None
        if found is None:
            raise ExecutionException(f"image {base!r} is neither here nor pullable", field="docker_env.image")
        return ContainerImage(engine, base, found, False)
    version = commit[:7] if commit else _content_hash(work_dir)
    tag = f"{(project_name or 'docker-project').lower().replace(' ', '-')}:{version}"
    with tempfile.TemporaryDirectory(prefix="tracklane-build-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(work_dir, context, ignore=shutil.ignore_patterns(".git", "__pycache__"))
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(f"FROM {base}\nCOPY . {WORKDIR}/\nWORKDIR {WORKDIR}\n", encoding="utf-8")
        result = subprocess.run(
            [engine, "build", "-t", tag, "-f", str(dockerfile), str(context)], check=False
        )
    image_id = _inspect(engine, tag) if result.returncode == 0 else None
    if image_id is None:
        raise ExecutionException(f"building image {tag} from {base} failed; see above", field="build_image")
    return ContainerImage(engine, tag, image_id, True)


def _content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def docker_command(
    image: ContainerImage,
    container_name: str,
    command: str,
    work_dir: Path,
    run_env: Mapping[str, str],
    docker_env: Mapping[str, Any],
    docker_args: Mapping[str, Any] | None,
    host_network: bool,
) -> list[str]:
    """``ENGINE run`` for the entry point ``command`` (run by ``sh -c`` in the container).

    Raises:
        ExecutionException: ``docker_env.environment`` copies a variable that is not set here.
    """
    cmd = [image.engine, "run", "--rm", "--name", container_name]
    for name, value in (docker_args or {}).items():
        flag = f"-{name}" if len(name) == 1 else f"--{name}"
        cmd += [flag] if value is True else [flag, str(value)]
    if host_network:
        cmd += ["--network", "host"]
    if not image.built:
        cmd += ["-v", f"{work_dir}:{WORKDIR}"]
    cmd += ["-w", WORKDIR]
    env = dict(run_env)
    for entry in docker_env.get("environment") or []:
        if isinstance(entry, list):
            env[str(entry[0])] = str(entry[1])
        elif entry in os.environ:
            env[entry] = os.environ[entry]
        else:
            raise ExecutionException(
                f"docker_env.environment copies {entry!r} from this machine, but it is not set",
                field="docker_env.environment",
            )
    for volume in docker_env.get("volumes") or []:
        cmd += ["-v", volume]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    return [*cmd, image.uri, "sh", "-c", command]


def image_tags(image: ContainerImage) -> dict[str, str]:
    """MLflow's tags for the image a run used."""
    return {"mlflow.docker.image.uri": image.uri, "mlflow.docker.image.id": image.image_id}
