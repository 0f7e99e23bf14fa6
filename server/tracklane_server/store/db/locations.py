"""Artifact locations: an experiment's under the server's root, a run's under its experiment's."""

from __future__ import annotations


def child_uri(root: str, *segments: str) -> str:
    """``root`` joined with ``segments`` by ``/``, for ``file://`` and ``s3://`` URIs alike."""
    return "/".join([root.rstrip("/"), *(s.strip("/") for s in segments)])


def run_artifact_uri(experiment_location: str, run_id: str) -> str:
    """Where a run's artifacts live: ``<experiment location>/<run_id>/artifacts`` (MLflow's layout)."""
    return child_uri(experiment_location, run_id, "artifacts")
