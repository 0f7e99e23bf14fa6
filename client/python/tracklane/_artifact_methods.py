"""Client methods for ArtifactService (the artifacts issue); mixed into ``tracklane.Client``."""

from __future__ import annotations

from tracklane._client_base import ClientBase


class ArtifactMethods(ClientBase):
    """A run's files: upload, download, list, delete."""
