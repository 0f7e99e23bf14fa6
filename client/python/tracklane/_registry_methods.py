"""Client methods for RegistryService (the registry issue); mixed into ``tracklane.Client``."""

from __future__ import annotations

from tracklane._client_base import ClientBase


class RegistryMethods(ClientBase):
    """Registered models, versions, aliases and stages; MLflow's method names."""
