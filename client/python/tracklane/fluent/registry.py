"""Fluent registry calls over the default client (``tracklane.register_model``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping

from tracklane.entities.model_registry import ModelVersion
from tracklane.exceptions import AlreadyExists, InvalidArgument
from tracklane.fluent.state import default_client

__all__ = ["register_model"]

_RUNS_URI_RE = re.compile(r"runs:/([^/]+)(?:/.*)?")


def register_model(model_uri: str, name: str, tags: Mapping[str, object] | None = None) -> ModelVersion:
    """Registers the model at ``model_uri`` as the next version of ``name``, creating the
    registered model when it does not exist yet.

    Args:
        model_uri: ``runs:/<run_id>/<path>`` (the run is recorded with the version) or an
            artifact URI such as ``s3://bucket/path/model``.
        name: The registered model.
        tags: Tags of the new version.

    Returns:
        The new version (1, 2, 3...).

    Raises:
        InvalidArgument: ``model_uri`` is a malformed ``runs:/`` URI.
        NotFound: The run in ``model_uri`` does not exist.
    """
    run_id = ""
    if model_uri.startswith("runs:"):
        match = _RUNS_URI_RE.fullmatch(model_uri)
        if match is None:
            raise InvalidArgument(f"model_uri: {model_uri!r} is not runs:/<run_id>/<path>", field="model_uri")
        run_id = match.group(1)
    client = default_client()
    with contextlib.suppress(AlreadyExists):  # registering a further version is the common case
        client.create_registered_model(name)
    return client.create_model_version(name, model_uri, run_id=run_id or None, tags=tags)
