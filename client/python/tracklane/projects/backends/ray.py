"""The ``ray`` backend: the entry point as a Ray job, through Ray's Job Submission API.

``--backend-config`` (a JSON file or object) gives ``address``, the cluster's dashboard
(default ``$RAY_ADDRESS``, else ``http://127.0.0.1:8265``), and optionally ``runtime_env``, merged
into the job's. The project folder is the job's ``working_dir`` (Ray uploads it), the run's
variables its ``env_vars``. Environments are the cluster's: ``local`` runs on the workers' Python
(which needs Tracklane installed to log), ``uv``/``virtualenv`` ask Ray to install the
``python_env.yaml`` dependencies with its ``pip`` runtime environment, ``conda`` passes conda.yaml.
The job's output is streamed here and kept with the run; its end (SUCCEEDED, FAILED, STOPPED)
ends the run FINISHED, FAILED or KILLED; ``cancel()`` stops the job.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import yaml

from tracklane.projects.backends.base import Launch
from tracklane.projects.errors import ExecutionException
from tracklane.projects.submitted_run import OutputLog, SubmittedRun

__all__ = ["RayBackend", "RaySubmittedRun"]

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
_TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def _job_client(address: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise ExecutionException(
            "--backend ray needs Ray's job client: pip install 'tracklane[ray]'", field="backend"
        ) from None
    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ExecutionException(
            f"no Ray cluster answers at {address}: {exc}", field="backend_config"
        ) from None


class RayBackend:
    """Submits the entry point as a Ray job; see the package docstring for the interface."""

    def submit(self, launch: Launch) -> RaySubmittedRun:
        config = launch.backend_config
        address = str(config.get("address") or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS)
        runtime_env: dict[str, Any] = {
            "working_dir": str(launch.source.work_dir),
            "env_vars": {**launch.run_env, "PYTHONUNBUFFERED": "1"},
        }
        manager = launch.env_manager
        if manager == "docker":
            raise ExecutionException(
                "--backend ray runs python_env and conda_env projects; for docker_env give the image as "
                "runtime_env.image_uri in --backend-config and --env-manager local",
                field="env_manager",
            )
        if manager in ("uv", "virtualenv") and launch.env_spec.dependencies:
            runtime_env["pip"] = list(launch.env_spec.dependencies)
        if manager == "conda" and launch.project.env_config_path is not None:
            runtime_env["conda"] = yaml.safe_load(launch.project.env_config_path.read_text(encoding="utf-8"))
        extra = config.get("runtime_env") or {}
        runtime_env["env_vars"].update(extra.pop("env_vars", {}) if isinstance(extra, dict) else {})
        runtime_env.update(extra)
        client = _job_client(address)
        job_id = client.submit_job(
            entrypoint=launch.command,
            submission_id=f"tracklane-{launch.run_id}",
            runtime_env=runtime_env,
            metadata={"tracklane_run_id": launch.run_id},
        )
        print(f"tracklane: submitted Ray job {job_id} to {address}", flush=True)
        launch.record(
            {"mlflow.project.env": manager, "tracklane.ray.jobId": job_id, "tracklane.ray.address": address}
        )
        return RaySubmittedRun(launch, client, job_id)


class RaySubmittedRun(SubmittedRun):
    """A project run that is a Ray job."""

    def __init__(self, launch: Launch, client: Any, job_id: str) -> None:
        super().__init__(launch.run_id, launch.tracking_uri, launch.output, launch.record.finish)
        self.job_id = job_id
        self._client = client
        self._start_monitor()

    def _wait_job(self) -> bool:
        try:
            asyncio.run(self._tail(self._output))
        except Exception as exc:  # a dropped log stream: the job's status still decides
            self._output.write(f"tracklane: the Ray job's log stream ended: {exc}\n".encode())
        status = str(self._client.get_job_status(self.job_id))
        while status.rsplit(".", 1)[-1] not in _TERMINAL:
            time.sleep(0.2)
            status = str(self._client.get_job_status(self.job_id))
        return status.endswith("SUCCEEDED")

    async def _tail(self, output: OutputLog) -> None:
        # The log stream ends when the job does.
        async for text in self._client.tail_job_logs(self.job_id):
            output.write(text.encode())

    def _stop_job(self) -> None:
        self._client.stop_job(self.job_id)
