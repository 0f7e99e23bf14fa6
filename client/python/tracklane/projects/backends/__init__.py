"""Where an entry point runs: ``local`` (this machine) or ``ray`` (a Ray cluster, through its Job
Submission API).

A backend is one method, ``submit(launch) -> SubmittedRun``, that starts the entry point described
by a ``Launch`` and returns at once. The run already exists, with its params and MLflow's tags; the
backend adds what it knows (``mlflow.project.env``, an image, a job id) with ``launch.record``,
makes the environment (here, or by the cluster's own means), passes ``launch.run_env`` (the run id
and tracking URIs) to the entry point, and returns a ``SubmittedRun`` whose ``_wait_job`` blocks
until the work ended (streaming its output into ``launch.output``) and whose ``_stop_job`` stops
it. The ``SubmittedRun`` base class then keeps the output as an artifact and ends the run.

A Kubernetes Job backend fits the same shape: ``submit`` builds the project image (``docker.py``'s
``prepare_image`` with ``build=True``), pushes it to the registry named in the backend config,
creates a Job from the config's template with the image, ``sh -c launch.command`` and
``launch.run_env`` as the container's env, and returns a handle whose ``_wait_job`` follows the
pod's log (``read_namespaced_pod_log(follow=True)``) and the Job's conditions (Complete -> True,
Failed -> False) and whose ``_stop_job`` deletes the Job with propagation ``Foreground``.
"""

from __future__ import annotations

from typing import Protocol

from tracklane.projects.backends.base import Launch
from tracklane.projects.errors import ExecutionException
from tracklane.projects.submitted_run import SubmittedRun

__all__ = ["BACKENDS", "Backend", "Launch", "load_backend"]

BACKENDS = ("local", "ray")


class Backend(Protocol):
    def submit(self, launch: Launch) -> SubmittedRun:
        """Starts the entry point and returns without waiting for it."""
        ...


def load_backend(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ExecutionException: An unknown name.
    """
    if name == "local":
        from tracklane.projects.backends.local import LocalBackend

        return LocalBackend()
    if name == "ray":
        from tracklane.projects.backends.ray import RayBackend

        return RayBackend()
    raise ExecutionException(f"--backend {name!r}: use one of {', '.join(BACKENDS)}", field="backend")
