"""Where a recipe logs: the profile's ``experiment`` on a Tracklane server, through the public API.

The server is, first, the one passed in (``Recipe(tracking_uri=...)``, ``--tracking-uri``), then the
profile's ``experiment.tracking_uri`` when it is a ``grpc://`` URI, then ``TRACKLANE_TRACKING_URI``.
A profile written for MLflow names a SQLite file or an HTTP server there; it then runs unchanged
against the server ``TRACKLANE_TRACKING_URI`` names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracklane.recipes.config import RecipeConfig
from tracklane.recipes.errors import RecipeConfigError

__all__ = ["RecipeTracking"]


@dataclass
class RecipeTracking:
    """The recipe's server and experiment; nothing is contacted until a run is needed."""

    config: RecipeConfig
    uri: str
    experiment_name: str
    _experiment_id: str | None = None
    _client: Any = None

    @classmethod
    def of(cls, config: RecipeConfig, tracking_uri: str | None) -> RecipeTracking:
        """Resolves the server and the experiment name (see the module docstring).

        Raises:
            RecipeConfigError: the profile names a non-Tracklane server and no other is given.
        """
        from tracklane import _channel

        experiment = config.schema.experiment
        profile_uri = experiment.tracking_uri if experiment else None
        uri = tracking_uri
        if uri is None and profile_uri and profile_uri.startswith(("grpc://", "grpcs://")):
            uri = profile_uri
        if uri is None:
            uri = os.environ.get("TRACKLANE_TRACKING_URI") or None
        if uri is None and profile_uri:
            raise RecipeConfigError(
                f"experiment.tracking_uri {profile_uri!r} is not a Tracklane server (grpc://HOST:PORT): "
                "set TRACKLANE_TRACKING_URI or pass --tracking-uri"
            )
        name = (experiment.name if experiment else None) or config.name
        return cls(config, _channel.resolve_tracking_uri(uri), name)

    def identity(self) -> dict[str, Any]:
        """What tracking steps' cache keys include: a run id means nothing on another server."""
        return {"uri": self.uri, "experiment": self.experiment_name}

    def client(self) -> Any:
        """A Client of the recipe's server; the fluent API (which steps log through) points there too."""
        import tracklane

        if tracklane.get_tracking_uri() != self.uri:
            tracklane.set_tracking_uri(self.uri)
        if self._client is None:
            self._client = tracklane.Client(self.uri)
        return self._client

    def close(self) -> None:
        """Releases the client's connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def experiment_id(self) -> str:
        """The experiment's id, created (with the profile's artifact_location) when missing."""
        if self._experiment_id is None:
            from tracklane.exceptions import AlreadyExists

            client = self.client()
            found = client.get_experiment_by_name(self.experiment_name)
            if found is None:
                try:
                    self._experiment_id = client.create_experiment(
                        self.experiment_name, self._artifact_location()
                    )
                except AlreadyExists:  # created concurrently
                    found = client.get_experiment_by_name(self.experiment_name)
            if found is not None:
                self._experiment_id = found.experiment_id
        assert self._experiment_id is not None
        return self._experiment_id

    def _artifact_location(self) -> str | None:
        experiment = self.config.schema.experiment
        location = experiment.artifact_location if experiment else None
        if not location or "://" in location:
            return location
        path = Path(location)
        return (path if path.is_absolute() else self.config.root / path).resolve().as_uri()

    def create_run(self) -> str:
        """A new run for this execution of the recipe, tagged with its template and profile."""
        client = self.client()
        tags = {
            "tracklane.source.type": "RECIPE",
            "tracklane.recipe.name": self.config.name,
            "tracklane.recipe.template": self.config.schema.template_name,
            "tracklane.recipe.profile": self.config.profile or "",
        }
        run = client.create_run(
            self.experiment_id(), tags=tags, run_name=f"{self.config.name}-{self.config.profile or 'run'}"
        )
        return str(run.info.run_id)

    def log_card(self, run_id: str, step: str, card: Path) -> None:
        """Logs ``card`` (a file named card.html) as ``<step>/card.html`` of the run."""
        self.client().log_artifact(run_id, card, step)

    def fail_run(self, run_id: str) -> None:
        """Marks a run this execution created as FAILED."""
        from tracklane.entities import RunStatus

        self.client().set_terminated(run_id, RunStatus.FAILED)

    def finish_run(self, run_id: str) -> None:
        """Marks a run this execution created (and no step ended) as FINISHED."""
        from tracklane.entities import RunStatus

        if self.client().get_run(run_id).info.status == RunStatus.RUNNING:
            self.client().set_terminated(run_id, RunStatus.FINISHED)

    def model_identity(self, uri: str) -> str:
        """What a model URI points at now (``models:/x/latest`` moves with each new version)."""
        from tracklane.models.uri import RunArtifact, resolve_model_uri

        if not uri.startswith("models:"):
            return uri
        found = resolve_model_uri(uri, self.client())
        return found.uri if isinstance(found, RunArtifact) else str(found)
