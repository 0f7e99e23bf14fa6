"""Client methods for ArtifactService; mixed into ``tracklane.Client``.

Transfers go through the server (proxied, the default) or, in direct mode, straight to the object
store with presigned URLs: ``Client.artifact_transfer = "direct"``, or
``TRACKLANE_ARTIFACT_TRANSFER=direct``, or ``direct=True`` per call. Direct mode falls back to
proxied for runs whose artifacts are in a local folder of the server.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from tracklane._artifacts.transfer import (
    FileInfo,
    Progress,
    download_direct,
    download_proxied,
    retrying,
    upload_direct,
    upload_proxied,
)
from tracklane._client_base import ClientBase
from tracklane.exceptions import FailedPrecondition, InvalidArgument, from_rpc_error
from tracklane.v1 import artifacts_pb2
from tracklane.wire.artifacts import parse_download_message

__all__ = ["TRANSFER_ENV", "ArtifactMethods", "FileInfo"]

TRANSFER_ENV = "TRACKLANE_ARTIFACT_TRANSFER"
_MODES = ("proxied", "direct")
# The ErrorInfo reason the server gives when a run's artifact root has no direct mode.
NO_DIRECT_MODE = "NO_DIRECT_MODE"
_UPLOAD_METHOD = "/tracklane.v1.ArtifactService/UploadArtifact"
_DOWNLOAD_METHOD = "/tracklane.v1.ArtifactService/DownloadArtifact"
# Files uploaded at once by log_artifacts / downloaded at once for a folder.
PARALLEL_FILES = 4


class ArtifactMethods(ClientBase):
    """A run's files: upload, download, list, delete."""

    #: ``"proxied"`` (through the server) or ``"direct"`` (presigned URLs); None: $TRACKLANE_ARTIFACT_TRANSFER
    artifact_transfer: str | None = None

    def log_artifact(
        self,
        run_id: str,
        local_path: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        direct: bool | None = None,
        progress: bool | None = None,
    ) -> FileInfo:
        """Uploads a local file as ``<artifact_path>/<its name>`` among the run's artifacts.

        Args:
            run_id: The run.
            local_path: The file; streamed, never read whole.
            artifact_path: Folder under the run's artifact root; None for the root.
            direct: Straight to the object store (True) or through the server (False); None: the
                client's ``artifact_transfer``.
            progress: Show a progress bar; None: for large files when stderr is a terminal.

        Returns:
            The stored file, with its size and SHA-256.

        Raises:
            InvalidArgument: A bad path (field ``path``). NotFound: No such run.
            FailedPrecondition: The run is deleted.
        """
        local = os.fspath(local_path)
        if not os.path.isfile(local):
            raise InvalidArgument(
                f"{local!r} is not a file; use log_artifacts for folders", field="local_path"
            )
        dest = _join(artifact_path, os.path.basename(local))
        return self._upload_file(run_id, local, dest, direct=direct, progress=progress)

    def log_artifacts(
        self,
        run_id: str,
        local_dir: str | os.PathLike[str],
        artifact_path: str | None = None,
        *,
        direct: bool | None = None,
        max_workers: int = PARALLEL_FILES,
    ) -> list[FileInfo]:
        """Uploads every file below a local folder, keeping its layout, a few files at once.

        Returns:
            The stored files, one per local file (folders in name order, files first).
        """
        root = os.fspath(local_dir)
        if not os.path.isdir(root):
            raise InvalidArgument(f"{root!r} is not a folder", field="local_dir")
        jobs: list[tuple[str, str]] = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                local = os.path.join(folder, name)
                rel = Path(os.path.relpath(local, root)).as_posix()
                jobs.append((local, _join(artifact_path, rel)))
        with ThreadPoolExecutor(max(1, max_workers), thread_name_prefix="tracklane-upload") as pool:
            return list(pool.map(lambda job: self._upload_file(run_id, *job, direct=direct), jobs))

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> FileInfo:
        """Stores ``data`` as the artifact ``artifact_file`` (a path under the run's root)."""
        return self._upload(run_id, lambda: io.BytesIO(data), len(data), artifact_file, None, None)

    def list_artifacts(
        self, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> list[FileInfo]:
        """Files and folders directly under ``path`` (or, recursive, every file below it), in path order."""
        return list(self.iter_artifacts(run_id, path, recursive=recursive))

    def iter_artifacts(
        self, run_id: str, path: str | None = None, *, recursive: bool = False
    ) -> Iterator[FileInfo]:
        """Like :meth:`list_artifacts`, fetching pages lazily."""
        token = ""
        while True:
            response = self._call(
                self._artifacts.ListArtifacts,
                artifacts_pb2.ListArtifactsRequest(
                    run_id=run_id, path=path or "", recursive=recursive, page_token=token
                ),
            )
            yield from (FileInfo.from_proto(f) for f in response.files)
            token = response.next_page_token
            if not token:
                return

    def download_artifacts(
        self,
        run_id: str,
        path: str = "",
        dst_path: str | os.PathLike[str] | None = None,
        *,
        direct: bool | None = None,
        progress: bool | None = None,
        verify: bool = False,
    ) -> str:
        """Downloads a file or a folder of the run's artifacts.

        Args:
            run_id: The run.
            path: File or folder under the run's root; ``""`` for everything.
            dst_path: Local folder to download into (created if missing); None: a new temporary folder.
            direct: As in :meth:`log_artifact`.
            progress: As in :meth:`log_artifact`.
            verify: Check each file against its stored SHA-256, when known (one more pass over the
                bytes; sizes are always checked). A mismatch raises Internal and keeps no file.

        Returns:
            The local path of the file or folder: ``<dst_path>/<path>``.

        Raises:
            NotFound: No such run, or nothing at ``path``.
        """
        dst = os.path.abspath(os.fspath(dst_path) if dst_path is not None else tempfile.mkdtemp())
        path = path.strip("/")
        files = [f for f in self.iter_artifacts(run_id, path, recursive=True) if not f.is_dir]
        if not files:  # a file, or nothing: the download says which
            if not path:
                os.makedirs(dst, exist_ok=True)
                return dst
            self._download_file(
                run_id, path, _local(dst, path), direct=direct, progress=progress, verify=verify
            )
            return _local(dst, path)
        with ThreadPoolExecutor(PARALLEL_FILES, thread_name_prefix="tracklane-download") as pool:
            list(
                pool.map(
                    lambda f: self._download_file(
                        run_id, f.path, _local(dst, f.path), direct=direct, verify=verify
                    ),
                    files,
                )
            )
        return _local(dst, path) if path else dst

    def delete_artifacts(self, run_id: str, path: str = "") -> None:
        """Deletes a file, or a folder with everything below it; ``""`` deletes all the run's artifacts.

        Raises:
            NotFound: Nothing at ``path``. FailedPrecondition: The run is deleted.
        """
        self._call(
            self._artifacts.DeleteArtifact, artifacts_pb2.DeleteArtifactRequest(run_id=run_id, path=path)
        )

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """A small artifact's whole content (load_text, load_dict). Raises NotFound."""
        chunks: list[bytes | memoryview] = []

        def attempt() -> bytes:
            chunks.clear()
            try:
                for raw in self._raw_download(
                    artifacts_pb2.DownloadArtifactRequest(run_id=run_id, path=path), timeout=self.timeout
                ):
                    chunks.append(parse_download_message(raw)[1])
            except grpc.RpcError as err:
                raise from_rpc_error(err) from None
            return b"".join(chunks)

        data: bytes = retrying(attempt, "read")
        return data

    # Internals

    @functools.cached_property
    def _raw_upload(self) -> Any:
        """UploadArtifact sending serialized requests (see _artifact_wire)."""
        return self._channel.stream_unary(
            _UPLOAD_METHOD,
            request_serializer=None,
            response_deserializer=artifacts_pb2.UploadArtifactResponse.FromString,
        )

    @functools.cached_property
    def _raw_download(self) -> Any:
        """DownloadArtifact answering serialized responses (see _artifact_wire)."""
        return self._channel.unary_stream(
            _DOWNLOAD_METHOD,
            request_serializer=artifacts_pb2.DownloadArtifactRequest.SerializeToString,
            response_deserializer=None,
        )

    def _use_direct(self, direct: bool | None) -> bool:
        if direct is not None:
            return direct
        mode = (self.artifact_transfer or os.environ.get(TRANSFER_ENV) or "proxied").lower()
        if mode not in _MODES:
            raise InvalidArgument(
                f"artifact transfer mode must be proxied or direct, not {mode!r}", field=TRANSFER_ENV
            )
        return mode == "direct"

    def _upload_file(
        self, run_id: str, local: str, dest: str, *, direct: bool | None, progress: bool | None = None
    ) -> FileInfo:
        return self._upload(
            run_id,
            lambda: open(local, "rb", buffering=0),
            os.path.getsize(local),
            dest,
            direct,
            progress,
            local,
        )

    def _upload(
        self,
        run_id: str,
        source: Any,
        size: int,
        dest: str,
        direct: bool | None,
        progress: bool | None,
        local: str = "",
    ) -> FileInfo:
        bar = Progress(size, posixpath.basename(dest), progress)
        try:
            if local and self._use_direct(direct):
                try:
                    return upload_direct(self._unary, run_id, local, size, dest, bar)
                except FailedPrecondition as exc:
                    if exc.reason != NO_DIRECT_MODE:
                        raise
                    # A local-folder root on the server: no direct mode, go through the server.
            return upload_proxied(self._raw_upload, run_id, source, size, dest, bar)
        finally:
            bar.close()

    def _download_file(
        self,
        run_id: str,
        path: str,
        dst: str,
        *,
        direct: bool | None,
        progress: bool | None = None,
        verify: bool = False,
    ) -> FileInfo:
        if self._use_direct(direct):
            try:
                presigned = self._unary(
                    "GetPresignedDownload",
                    artifacts_pb2.GetPresignedDownloadRequest(run_id=run_id, path=path),
                )
            except FailedPrecondition as exc:
                if exc.reason != NO_DIRECT_MODE:
                    raise
            else:
                return download_direct(
                    presigned.url, FileInfo.from_proto(presigned.file), dst, progress, verify
                )
        return download_proxied(self._raw_download, run_id, path, dst, progress, verify)

    def _unary(self, method: str, request: Any) -> Any:
        return self._call(getattr(self._artifacts, method), request)


def _join(folder: str | None, name: str) -> str:
    return posixpath.join(folder.strip("/"), name) if folder and folder.strip("/") else name


def _local(dst: str, path: str) -> str:
    """Where an artifact path lands under ``dst``; never outside it, whatever the server sent."""
    local = os.path.normpath(os.path.join(dst, *path.split("/")))
    if os.path.commonpath([local, dst]) != dst:
        raise InvalidArgument(f"artifact path {path!r} cannot be stored under {dst}", field="path")
    return local
