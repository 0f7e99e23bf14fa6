"""The ``local`` backend: the entry point as a process group of this machine (``bash -c COMMAND``
in the project folder), in the prepared environment or in a container of the project's image."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

from tracklane.projects import docker, environments
from tracklane.projects.backends.base import Launch
from tracklane.projects.submitted_run import LocalSubmittedRun

__all__ = ["LocalBackend"]

_LOOPBACK = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


class LocalBackend:
    """Runs the entry point here; see the package docstring for the interface."""

    def submit(self, launch: Launch) -> LocalSubmittedRun:
        env = dict(os.environ)
        env.update(launch.run_env)
        stop_extra = None
        if launch.env_manager == "docker":
            assert launch.project.docker_env is not None
            image = docker.prepare_image(
                launch.project.docker_env,
                launch.source.work_dir,
                launch.project.name,
                launch.source.git_commit,
                launch.build_image,
            )
            launch.record({"mlflow.project.env": "docker", **docker.image_tags(image)})
            name = f"tracklane-{launch.run_id}"
            host = urlsplit(launch.tracking_uri).hostname or ""
            cmd = docker.docker_command(
                image,
                name,
                launch.command,
                launch.source.work_dir,
                launch.run_env,
                launch.project.docker_env,
                launch.docker_args,
                host in _LOOPBACK or host.startswith("127."),
            )
            stop_extra = [image.engine, "kill", name]
        else:
            prepared = (
                environments.prepare_from_lock(launch.lock[0], launch.lock[1], launch.source.work_dir)
                if launch.lock is not None
                else environments.prepare(
                    launch.env_manager,
                    launch.env_spec,
                    launch.source.work_dir,
                    launch.project.env_config_path,
                )
            )
            state = "reused" if prepared.reused else "built"
            print(
                f"tracklane: {launch.env_manager} environment {state} in {prepared.setup_seconds:.2f} s "
                f"(Python {prepared.python_version})",
                file=sys.stderr,
                flush=True,
            )
            tags = {
                "mlflow.project.env": launch.env_manager,
                "tracklane.project.python": prepared.python_version,
                "tracklane.project.envSetupSeconds": f"{prepared.setup_seconds:.3f}",
            }
            texts = {}
            if prepared.lock is not None and prepared.lock_hash is not None:
                tags["tracklane.project.lockHash"] = prepared.lock_hash
                tags["tracklane.project.client"] = prepared.client_install
                texts["project/requirements.lock"] = prepared.lock
            launch.record(tags, texts)
            env["PATH"] = f"{prepared.bin_dir}{os.pathsep}{env.get('PATH', '')}"
            if launch.env_manager != "local":
                env["VIRTUAL_ENV"] = str(prepared.bin_dir.parent)
            env.pop("PYTHONHOME", None)
            cmd = ["bash", "-c", launch.command]
        process = subprocess.Popen(
            cmd,
            cwd=launch.source.work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: cancel() ends everything it started
        )
        return LocalSubmittedRun(
            launch.run_id, launch.tracking_uri, launch.output, process, stop_extra, launch.record.finish
        )
