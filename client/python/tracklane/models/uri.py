"""Model URIs, resolved to a local model folder: the one place that knows every form.

    /path/to/model, file:///path/to/model   a local folder, used in place
    runs:/<run_id>/<path>                   a run's artifacts, downloaded
    models:/<name>/<version>                a registered version (1, 2, 3...)
    models:/<name>@<alias>                  the version an alias points at
    models:/<name>/<stage>                  the latest version in a stage (None, Staging, Production,
                                            Archived; any case)
    models:/<name>/latest                   the highest version

``models:/`` URIs are looked up in the registry, then the version's source (a ``runs:/`` URI, or an
artifact location under its run's root) is downloaded through the artifact service.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from tracklane.entities.model_registry import ModelStage, ModelVersion
from tracklane.exceptions import InvalidArgument, NotFound

if TYPE_CHECKING:
    from tracklane.client import Client

__all__ = [
    "RunArtifact",
    "download_model",
    "download_model_file",
    "parse_runs_uri",
    "registered_version",
    "resolve_model_uri",
]

_VERSION = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class RunArtifact:
    """A path under a run's artifact root."""

    run_id: str
    path: str

    @property
    def uri(self) -> str:
        """The ``runs:/`` URI."""
        return f"runs:/{self.run_id}/{self.path}".rstrip("/")


def parse_runs_uri(uri: str) -> RunArtifact:
    """``runs:/<run_id>/<path>`` -> RunArtifact.

    Raises:
        InvalidArgument: not of that form.
    """
    rest = uri[len("runs:") :].lstrip("/") if uri.startswith("runs:") else ""
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidArgument(f"{uri!r} is not a runs:/<run_id>/<path> URI", field="model_uri")
    return RunArtifact(run_id, path.strip("/"))


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    from tracklane import fluent

    return fluent.default_client()


def resolve_model_uri(model_uri: str, client: Client | None = None) -> RunArtifact | str:
    """Where a model URI's files are: a run's artifact path, or a local folder.

    Raises:
        InvalidArgument: an unknown scheme or a malformed URI.
        NotFound: no such model, version, alias, or no version in that stage.
    """
    uri = os.fspath(model_uri)
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "runs":
        return parse_runs_uri(uri)
    if scheme == "models":
        return _resolve_registered(uri, _client(client))
    if scheme == "file":
        return unquote(urlsplit(uri).path)
    if not scheme or len(scheme) == 1:  # a path ("C:\\..." has a one-letter scheme)
        return uri
    raise InvalidArgument(
        f"cannot load a model from {uri!r}: use a local path, runs:/, or models:/ URI", field="model_uri"
    )


def _resolve_registered(uri: str, client: Client) -> RunArtifact | str:
    return _source_location(client, registered_version(uri, client))


def registered_version(uri: str, client: Client | None = None) -> ModelVersion:
    """The registered version a ``models:/`` URI names (by number, alias, stage or ``latest``).

    Raises:
        InvalidArgument: not a well-formed ``models:/`` URI.
        NotFound: no such model, version, alias, or no version in that stage.
    """
    client = _client(client)
    rest = uri[len("models:") :].lstrip("/")
    name, alias, suffix = "", "", ""
    if "@" in rest and "/" not in rest.rpartition("@")[2]:
        name, _, alias = rest.rpartition("@")
    else:
        name, _, suffix = rest.rpartition("/")
    if not name or not (alias or suffix):
        raise InvalidArgument(
            f"{uri!r} is not models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/<stage>",
            field="model_uri",
        )
    if alias:
        return client.get_model_version_by_alias(name, alias)
    if _VERSION.match(suffix):
        return client.get_model_version(name, int(suffix))
    if suffix.lower() == "latest":
        versions = client.get_latest_versions(name)
        if not versions:
            raise NotFound(f"registered model {name!r} has no versions", field="name")
        return max(versions, key=lambda v: int(v.version))
    stage = ModelStage.parse(suffix, field="model_uri")
    versions = client.get_latest_versions(name, stages=[stage.value])
    if not versions:
        raise NotFound(f"registered model {name!r} has no version in stage {stage.value!r}", field="stage")
    return max(versions, key=lambda v: int(v.version))


def _source_location(client: Client, version: ModelVersion) -> RunArtifact | str:
    source = str(version.source)
    if source.startswith("runs:"):
        return parse_runs_uri(source)
    if source.startswith("models:"):
        # A version copied from another registered model: follow the chain.
        return _resolve_registered(source, client)
    scheme = urlsplit(source).scheme.lower()
    if version.run_id:
        # An artifact location under the run's root (s3://.../<run>/artifacts/model): keep the
        # part below the root and download it through the artifact service.
        root = client.get_run(version.run_id).info.artifact_uri.rstrip("/")
        if root and source.rstrip("/").startswith(root):
            return RunArtifact(version.run_id, source.rstrip("/")[len(root) :].strip("/"))
    if scheme == "file" or not scheme:
        return unquote(urlsplit(source).path) if scheme else source
    raise InvalidArgument(
        f"model version {version.name!r} {version.version}: cannot download its source {source!r}",
        field="source",
    )


def download_model(model_uri: str, dst_path: str | None = None, client: Client | None = None) -> str:
    """The local folder holding the model at ``model_uri``, downloaded when remote.

    Args:
        model_uri: Any form in the module docstring.
        dst_path: Where to download (a new temporary folder when None). Local paths are used in
            place unless ``dst_path`` is given.
        client: The client for registry and artifact calls; default the fluent one.

    Returns:
        The absolute path of the model folder.
    """
    location = resolve_model_uri(model_uri, client)
    if isinstance(location, str):
        if dst_path is None:
            return os.path.abspath(location)
        import shutil

        target = os.path.join(dst_path, os.path.basename(os.path.normpath(location)))
        shutil.copytree(location, target, dirs_exist_ok=True)
        return os.path.abspath(target)
    return _download(_client(client), location, dst_path)


def download_model_file(model_uri: str, file_name: str, dst_path: str, client: Client | None = None) -> str:
    """Only one file of a model (e.g. its MLmodel), downloaded into ``dst_path`` when remote.

    Returns:
        The local file, or the local model folder for a local ``model_uri``.
    """
    location = resolve_model_uri(model_uri, client)
    if isinstance(location, str):
        return location
    path = f"{location.path}/{file_name}" if location.path else file_name
    return _download(_client(client), RunArtifact(location.run_id, path), dst_path)


def _download(client: Client, location: RunArtifact, dst_path: str | None) -> str:
    dst = dst_path if dst_path is not None else tempfile.mkdtemp(prefix="tracklane-model-")
    os.makedirs(dst, exist_ok=True)
    local: str = client.download_artifacts(location.run_id, location.path, dst)
    return os.path.abspath(local)
