"""Which store holds a run's artifacts: the run's ``artifact_uri`` (from its experiment), opened once.

Experiments may put artifacts on another bucket, prefix or local folder than the server's default
root (one the operator allowed), so stores are opened per run root and cached (opening is cheap and
offline: S3 stores share one ``minio`` client per endpoint and key). A bucket is checked (created
if missing) the first time something is written to it, like the default root is at start.

A local run root is opened below the configured root that holds it: from there down no symbolic
link is followed. A root outside every configured one (an experiment made before locations were
checked) keeps working, opened from its own folder, and is logged once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tracklane.entities import LifecycleStage
from tracklane.exceptions import FailedPrecondition, InvalidArgument, NotFound
from tracklane_server.artifacts import ArtifactStore, open_store
from tracklane_server.artifacts.allowed_roots import AllowedRoots
from tracklane_server.settings import Settings

__all__ = ["RunArtifacts", "RunRoots"]

log = logging.getLogger(__name__)

_RUN_ID_MAX = 64


@dataclass(frozen=True)
class RunArtifacts:
    """A run's artifact root and the store that holds it."""

    run_id: str
    root_uri: str
    store: ArtifactStore


class RunRoots:
    """Looks up runs' artifact roots and opens their stores (cached; thread-safe).

    Args:
        lookup: A run id's ``artifact_uri`` and lifecycle stage (``RunStore.artifact_location``);
            NotFound (``run_id``) for no such run.
        settings: The server settings: S3 endpoint and keys used for every ``s3://`` root, and
            ``auth`` (local artifact files are created private with it).
        allowed: The configured roots. Default: those of ``settings``.
    """

    def __init__(
        self,
        lookup: Callable[[str], tuple[str, str]],
        settings: Settings,
        allowed: AllowedRoots | None = None,
    ) -> None:
        self._location = lookup
        self._settings = settings
        self.allowed = allowed or AllowedRoots(
            settings.resolved_artifact_root, settings.allowed_artifact_roots
        )
        self._ready: set[str] = set()
        self._ready_lock = threading.Lock()

    def for_read(self, run_id: str) -> RunArtifacts:
        """The run's artifacts, for reading (deleted runs stay readable, as in MLflow).

        Raises:
            InvalidArgument: No run id (field ``run_id``).
            NotFound: No such run (field ``run_id``).
        """
        uri, _ = self._lookup(run_id)
        return RunArtifacts(run_id, uri, self.store(uri))

    def for_write(self, run_id: str) -> RunArtifacts:
        """The run's artifacts, for writing or deleting; the bucket or folder exists afterwards.

        Raises:
            InvalidArgument: No run id (field ``run_id``).
            NotFound: No such run (field ``run_id``).
            FailedPrecondition: The run is deleted (field ``run_id``).
        """
        uri, stage = self._lookup(run_id)
        if stage != LifecycleStage.ACTIVE.value:
            raise FailedPrecondition(
                f"run {run_id!r} is deleted; restore it before changing its artifacts", field="run_id"
            )
        store = self.store(uri)
        self._ensure_ready(uri, store)
        return RunArtifacts(run_id, uri, store)

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - one RunRoots per server, lives as long as it
    def store(self, uri: str) -> ArtifactStore:
        """The store for an artifact root URI (cached)."""
        s = self._settings
        root = self.allowed.containing(uri)
        if root is None:
            log.warning(
                "artifact root %s is outside the configured roots (made before locations were "
                "checked?); it keeps working: add its root to --allowed-artifact-roots",
                uri,
                extra={"artifact_uri": uri},
            )
        return open_store(
            uri,
            s3_endpoint_url=s.s3_endpoint_url,
            s3_access_key_id=s.s3_access_key_id,
            s3_secret_access_key=s.s3_secret_access_key,
            s3_region=s.s3_region,
            s3_public_endpoint_url=s.s3_public_endpoint_url,
            local_base=root.path if root is not None and root.scheme == "file" else "",
            private=s.auth,
        )

    def _ensure_ready(self, uri: str, store: ArtifactStore) -> None:
        # Per bucket: runs share it. Local writers create their folders themselves.
        if not uri.startswith("s3://"):
            return
        key = uri.split("/", 3)[2]
        if key in self._ready:
            return
        store.ensure_ready()
        with self._ready_lock:
            self._ready.add(key)

    def _lookup(self, run_id: str) -> tuple[str, str]:
        if not run_id:
            raise InvalidArgument("run_id is required", field="run_id")
        if len(run_id) > _RUN_ID_MAX:
            raise NotFound(f"run {run_id[:_RUN_ID_MAX]!r}... does not exist", field="run_id")
        return self._location(run_id)
