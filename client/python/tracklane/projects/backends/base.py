"""What a backend is given to run one entry point of one run."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracklane.client import Client
from tracklane.entities import Param, RunTag
from tracklane.projects.environments import PythonEnvSpec
from tracklane.projects.sources import Source
from tracklane.projects.spec import Project
from tracklane.projects.submitted_run import OutputLog

__all__ = ["Launch", "Recorder"]


class Recorder:
    """Tags and small text artifacts for the run, sent in the background (the entry point does not
    wait for them); ``join()`` before the run ends."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self._run_id = run_id
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def __call__(
        self, tags: Mapping[str, str], texts: Mapping[str, str] | None = None, params: Sequence[Param] = ()
    ) -> None:
        def send() -> None:
            try:
                if tags or params:
                    batch = [RunTag(k, v) for k, v in tags.items()]
                    self.client.log_batch(self._run_id, params=list(params), tags=batch)
                for path, text in (texts or {}).items():
                    self.client.log_bytes(self._run_id, text.encode(), path)
            except BaseException as exc:
                self._errors.append(exc)

        thread = threading.Thread(target=send, name="tracklane-project-record", daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        """Waits for everything sent; raises the first failure."""
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._errors:
            raise self._errors[0]

    def finish(self) -> None:
        """``join()``, then closes the client."""
        try:
            self.join()
        finally:
            self.client.close()


@dataclass(frozen=True)
class Launch:
    """One entry point of one (already created) run."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    project: Project
    source: Source
    command: str  # the shell command, parameters substituted and quoted
    run_env: dict[str, str]  # for the entry point: run id, tracking URIs, experiment
    env_manager: str  # local | uv | virtualenv | conda | docker
    env_spec: PythonEnvSpec
    output: OutputLog
    record: Recorder
    lock: tuple[str, str] | None = None  # (lock, python version) to rebuild (--from-run)
    backend_config: dict[str, Any] = field(default_factory=dict)
    docker_args: dict[str, Any] = field(default_factory=dict)
    build_image: bool = False
