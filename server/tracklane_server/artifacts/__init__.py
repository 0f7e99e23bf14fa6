"""Artifact stores: where run files live (a local folder or S3), behind one small interface.

Open one with :func:`open_store`; check client paths with :func:`validate_artifact_path`;
:class:`~tracklane_server.artifacts.run_roots.RunRoots` opens the store of a run's root.

May import settings and the client's shared core; never store/, services/, auth/ or http/.
"""

from __future__ import annotations

from .base import (
    DEFAULT_PRESIGN_EXPIRY,
    DEFAULT_READ_CHUNK_SIZE,
    ArtifactStat,
    ArtifactStore,
    ArtifactWriter,
    CompletedPart,
    PresignedPart,
    PresignedUpload,
)
from .factory import open_store
from .local import LocalArtifactStore
from .paths import join_key, validate_artifact_path
from .s3 import S3ArtifactStore

__all__ = [
    "DEFAULT_PRESIGN_EXPIRY",
    "DEFAULT_READ_CHUNK_SIZE",
    "ArtifactStat",
    "ArtifactStore",
    "ArtifactWriter",
    "CompletedPart",
    "LocalArtifactStore",
    "PresignedPart",
    "PresignedUpload",
    "S3ArtifactStore",
    "join_key",
    "open_store",
    "validate_artifact_path",
]
