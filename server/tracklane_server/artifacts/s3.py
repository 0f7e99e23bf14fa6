"""The S3 artifact store (MinIO or any S3), including direct uploads through presigned URLs.

Objects live at ``<prefix>/<relative path>`` in one bucket; folders are key prefixes. Direct
uploads are always multipart uploads, even for a small file (then one part, i.e. one presigned
PUT): a presigned PUT of the object itself would make the file visible, and overwrite an older
one, before the server had checked it, whereas a multipart upload stays invisible until the server
completes it after checking the parts against the declared size.
"""

from __future__ import annotations

import builtins
import collections
import dataclasses
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.datatypes import Object, Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from tracklane.exceptions import Internal, InvalidArgument, NotFound

from .base import (
    DEFAULT_PRESIGN_EXPIRY,
    DEFAULT_READ_CHUNK_SIZE,
    ArtifactStat,
    CompletedPart,
    PresignedPart,
    PresignedUpload,
)
from .paths import join_key, validate_artifact_path
from .s3_client import s3_errors, translate_error
from .s3_presign import check_expiry, encode_upload_id, given_parts, parse_upload_id, plan_parts
from .s3_writer import (
    PART_SIZE,
    S3Writer,
    sha256_headers,
    sha256_of_metadata,
    sha256_of_tags,
    tag_sha256,
    to_ms,
)
from .streaming import ChunkIterator, check_declared, check_range

__all__ = ["S3ArtifactStore"]

_MAX_KEY_BYTES = 1024
_LIST_PAGE_SIZE = 1000


class S3ArtifactStore:
    """Artifacts under ``s3://bucket/prefix``. Cheap to create: it shares the given client.

    Args:
        client: A client from :func:`tracklane_server.artifacts.s3_client.shared_client`.
        bucket: The bucket.
        prefix: Key prefix, already validated; ``""`` for the whole bucket.
        endpoint: The endpoint as shown in error messages (no credentials).
        region: The region to create the bucket in, if it is created.
        presign_client: Signs presigned URLs (a client for the public endpoint); ``client`` if None.
    """

    supports_presign = True

    def __init__(
        self,
        client: Minio,
        bucket: str,
        prefix: str,
        *,
        endpoint: str,
        region: str = "",
        presign_client: Minio | None = None,
    ) -> None:
        self._client = client
        # Signs URLs for clients that reach the object store by another address than the server.
        self._presign_client = presign_client or client
        self._bucket = bucket
        self._prefix = prefix
        self._endpoint = endpoint
        self._region = region
        self.root_uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.root_uri!r}, endpoint={self._endpoint!r})"

    def ensure_ready(self) -> None:
        """Creates the bucket if it is missing.

        Raises:
            Unavailable: The endpoint cannot be reached or refused the credentials.
        """
        with self._errors():
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket, location=self._region or None)
            except S3Error as exc:
                # Another replica starting at the same moment created it: fine.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def open_writer(self, path: str, *, size: int | None = None, sha256: str = "") -> S3Writer:
        """Starts an upload; see ArtifactStore.open_writer and :mod:`.s3_writer`."""
        rel, key = self._key(path)
        return S3Writer(self._client, self._bucket, key, rel, self._endpoint, size, sha256)

    def read(
        self, path: str, offset: int = 0, length: int | None = None, chunk_size: int = DEFAULT_READ_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Streams a file's bytes with one ranged GET; see ArtifactStore.read."""
        check_range(offset, length, chunk_size)
        rel, key = self._key(path)
        if length == 0:
            size = self._stat_file(rel, key).size
            if offset > size:
                raise InvalidArgument(
                    f"offset {offset} is past the end of the {size}-byte file", field="offset"
                )
            return iter(())
        try:
            with self._errors(rel):
                response = self._client.get_object(self._bucket, key, offset=offset, length=length or 0)
        except InvalidArgument as exc:
            if exc.field != "offset":
                raise
            # S3 refuses a range starting at the end, but resuming a finished download is no error.
            size = self._stat_file(rel, key).size
            if offset == size:
                return iter(())
            raise InvalidArgument(
                f"offset {offset} is past the end of the {size}-byte file", field="offset"
            ) from None

        def close() -> None:
            response.close()
            response.release_conn()

        # decode_content=False: the stored bytes exactly (a Content-Encoding set by another tool is not
        # undone), and urllib3 returns each read as is instead of copying it through its decode buffer.
        chunks = response.stream(chunk_size, decode_content=False)
        return ChunkIterator(self._translated(chunks, rel), close)

    def stat(self, path: str) -> ArtifactStat:
        """Describes a file, or a folder (a prefix with objects under it); see ArtifactStore.stat."""
        rel, key = self._key(path, allow_empty=True)
        if rel:
            try:
                return self._stat_file(rel, key)
            except NotFound:
                pass
        with self._errors(rel):
            if not rel or any(True for _ in self._client.list_objects(self._bucket, prefix=f"{key}/")):
                return ArtifactStat(rel, is_dir=True)
        raise NotFound(f"nothing at artifact path {rel!r}")

    def list(
        self, path: str = "", recursive: bool = False, *, start_after: str = ""
    ) -> Iterator[ArtifactStat]:
        """Lists a folder in key order; see ArtifactStore.list.

        SHA-256s come from MinIO's listing extension; other S3 services list them as unknown.
        """
        rel, key = self._key(path, allow_empty=True)
        folder = f"{key}/" if key else ""
        objects = self._client.list_objects(
            self._bucket,
            prefix=folder,
            recursive=recursive,
            start_after=join_key(self._prefix, start_after) if start_after else None,
            include_user_meta=True,
        )
        return self._listing(objects, start_after, rel)

    def delete(self, path: str) -> int:
        """Deletes a file or every object under a folder, in batches of 1,000; see ArtifactStore.delete."""
        rel, key = self._key(path, allow_empty=True)
        count = 0

        def keys() -> Iterator[DeleteObject]:
            nonlocal count
            if rel:
                try:
                    self._stat_file(rel, key)
                except NotFound:
                    pass
                else:
                    count += 1
                    yield DeleteObject(key)
            for item in self._client.list_objects(
                self._bucket, prefix=f"{key}/" if key else "", recursive=True
            ):
                # Folder markers (keys ending in '/', made by some tools) go, but are not files.
                count += 0 if item.object_name.endswith("/") else 1
                yield DeleteObject(item.object_name)

        with self._errors(rel):
            errors = builtins.list(self._client.remove_objects(self._bucket, keys()))
        if errors:
            raise Internal(f"could not delete {len(errors)} objects under {rel!r}: {errors[0].code}")
        if rel and count == 0:
            raise NotFound(f"nothing at artifact path {rel!r}")
        return count

    def presign_get(self, path: str, expires: timedelta = DEFAULT_PRESIGN_EXPIRY) -> str:
        """A presigned GET URL for a file (not checked to exist); see ArtifactStore.presign_get."""
        rel, key = self._key(path)
        check_expiry(expires)
        with self._errors(rel):
            return str(self._presign_client.presigned_get_object(self._bucket, key, expires=expires))

    def create_presigned_upload(
        self, path: str, size: int, *, sha256: str = "", expires: timedelta = DEFAULT_PRESIGN_EXPIRY
    ) -> PresignedUpload:
        """Starts a multipart upload and presigns one PUT per part; see ArtifactStore.create_presigned_upload.

        The declared SHA-256 goes into the object's metadata now (S3 takes metadata only at
        creation) and is verified by :meth:`complete_presigned_upload`.
        """
        rel, key = self._key(path)
        sha256 = check_declared(size, sha256)
        check_expiry(expires)
        plan = plan_parts(size)
        expire_time = datetime.now(UTC) + expires
        with self._errors(rel):
            upload_id = self._client._create_multipart_upload(self._bucket, key, sha256_headers(sha256))
            try:
                parts = tuple(
                    PresignedPart(number, self._presign_part(key, upload_id, number, expires), offset, length)
                    for number, offset, length in plan
                )
            except BaseException:
                self._client._abort_multipart_upload(self._bucket, key, upload_id)
                raise
        return PresignedUpload(encode_upload_id(size, upload_id), parts, expire_time)

    def complete_presigned_upload(
        self,
        path: str,
        upload_id: str,
        parts: Sequence[CompletedPart],
        *,
        sha256: str = "",
        verify_sha256: bool = True,
    ) -> ArtifactStat:
        """Checks the uploaded parts against the plan, completes, then checks size and SHA-256.

        Part and size checks happen before completion (a size mismatch aborts the upload, nothing
        becomes visible). A SHA-256 declared at the start can only be checked on the completed
        object: with ``verify_sha256`` the server reads it back and deletes it on a mismatch, so a
        wrong file is visible only for that read. A ``sha256`` given only now (the client hashed
        the file while sending it) is recorded in the object's tag without a read-back, like the
        hash a proxied upload learns at its end. See ArtifactStore.complete_presigned_upload.
        """
        rel, key = self._key(path)
        reported = check_declared(None, sha256)
        size, s3_upload_id = parse_upload_id(upload_id)
        plan = plan_parts(size)
        given = given_parts(parts, len(plan))
        with self._errors(rel):
            uploaded = self._uploaded_parts(key, s3_upload_id)
            for number, _, length in plan:
                part = uploaded.get(number)
                if part is None:
                    raise InvalidArgument(f"part {number} was not uploaded", field="parts")
                if part.etag != given[number]:
                    raise InvalidArgument(
                        f"part {number}: the ETag does not match the uploaded part", field="parts"
                    )
                if part.size != length:
                    self._client._abort_multipart_upload(self._bucket, key, s3_upload_id)
                    raise InvalidArgument(
                        f"part {number} has {part.size} bytes instead of {length}: the content does not "
                        f"match the declared size of {size} bytes; the upload was aborted",
                        field="size",
                    )
            completed = self._client._complete_multipart_upload(
                self._bucket, key, s3_upload_id, [Part(n, given[n]) for n, _, _ in plan]
            )
            stat = self._stat_file(rel, key)
            if stat.size != size:  # the parts were checked; this guards the completion itself
                self._client.remove_object(self._bucket, key)
                raise InvalidArgument(
                    f"the completed file has {stat.size} bytes instead of {size}; it was deleted",
                    field="size",
                )
            if reported and stat.sha256 and reported != stat.sha256:
                self._client.remove_object(self._bucket, key)
                raise InvalidArgument(
                    f"sha256 {reported} differs from the one declared at the start ({stat.sha256}); "
                    "the file was deleted",
                    field="sha256",
                )
            if verify_sha256 and stat.sha256:
                digest = hashlib.sha256()
                for chunk in self.read(rel, chunk_size=PART_SIZE):
                    digest.update(chunk)
                if digest.hexdigest() != stat.sha256:
                    self._client.remove_object(self._bucket, key)
                    raise InvalidArgument(
                        f"content SHA-256 is {digest.hexdigest()}, but the declared sha256 is {stat.sha256}; "
                        "the file was deleted",
                        field="sha256",
                    )
        if (
            reported
            and not stat.sha256
            and tag_sha256(self._client, self._bucket, key, str(completed.etag or ""), reported)
        ):
            stat = dataclasses.replace(stat, sha256=reported)
        return stat

    def abort_presigned_upload(self, path: str, upload_id: str) -> None:
        """Aborts a direct upload; a no-op when it is already gone."""
        rel, key = self._key(path)
        _, s3_upload_id = parse_upload_id(upload_id)
        try:
            with self._errors(rel):
                self._client._abort_multipart_upload(self._bucket, key, s3_upload_id)
        except NotFound:
            pass

    def abort_stale_uploads(self, older_than: datetime) -> int:
        """Aborts the multipart uploads under this root begun before ``older_than``; see ArtifactStore."""
        folder = f"{self._prefix}/" if self._prefix else ""
        aborted = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        with self._errors():
            while True:
                # MinIO lists uploads only for an exact key or the whole bucket: list all, keep ours.
                result = self._client._list_multipart_uploads(
                    self._bucket, key_marker=key_marker, upload_id_marker=upload_marker
                )
                for upload in result.uploads:
                    name = str(upload.object_name)
                    started = upload.initiated_time
                    if name.startswith(folder) and started is not None and started < older_than:
                        try:
                            self._client._abort_multipart_upload(self._bucket, name, str(upload.upload_id))
                            aborted += 1
                        except S3Error as exc:
                            if exc.code != "NoSuchUpload":  # finished or aborted meanwhile: fine
                                raise
                if not result.is_truncated or not result.uploads:
                    return aborted
                # minio-py drops NextUploadIdMarker; the last upload listed is the same marker.
                last = result.uploads[-1]
                key_marker, upload_marker = str(last.object_name), str(last.upload_id)

    def _key(self, path: str, *, allow_empty: bool = False) -> tuple[str, str]:
        rel = validate_artifact_path(path, allow_empty=allow_empty)
        key = join_key(self._prefix, rel)
        if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
            raise InvalidArgument(
                "artifact path is too long for this artifact root "
                f"(S3 keys are at most {_MAX_KEY_BYTES} bytes)",
                field="path",
            )
        return rel, key

    def _errors(self, rel: str = "") -> AbstractContextManager[None]:
        return s3_errors(self._endpoint, self._bucket, rel)

    def _relative(self, key: str) -> str:
        return key[len(self._prefix) + 1 :] if self._prefix else key

    def _stat_file(self, rel: str, key: str) -> ArtifactStat:
        with self._errors(rel):
            info = self._client.stat_object(self._bucket, key)
            sha256 = sha256_of_metadata(info.metadata)
            if not sha256 and info.metadata and info.metadata.get("x-amz-tagging-count"):
                # Undeclared multipart uploads keep the hash in a tag (see s3_writer): one more request.
                sha256 = sha256_of_tags(self._client.get_object_tags(self._bucket, key), info.etag)
        return ArtifactStat(rel, False, int(info.size or 0), sha256, to_ms(info.last_modified))

    def _listing(self, objects: Iterator[Object], start_after: str, rel: str) -> Iterator[ArtifactStat]:
        # A generator: minio lists lazily, so errors surface on iteration and are translated here.
        with self._errors(rel):
            for entry in _in_key_order(self._entry(item) for item in objects):
                # start_after is also sent to S3; this drops the folder S3 repeats after its own key.
                if entry is not None and entry.path and entry.sort_key > start_after:
                    yield entry

    def _entry(self, item: Object) -> ArtifactStat | None:
        name = str(item.object_name)
        if item.is_dir:
            return ArtifactStat(self._relative(name).rstrip("/"), is_dir=True)
        if name.endswith("/"):
            return None  # a folder marker, not a file
        return ArtifactStat(
            self._relative(name),
            False,
            int(item.size or 0),
            sha256_of_metadata(item.metadata) or sha256_of_tags(item.tags, item.etag),
            to_ms(item.last_modified),
        )

    def _translated(self, chunks: Iterator[bytes], rel: str) -> Iterator[bytes]:
        try:
            yield from chunks
        except Exception as exc:
            # A connection dropped mid-download: the caller resumes from the offset it reached.
            translated = translate_error(exc, self._endpoint, self._bucket, rel)
            if translated is None:
                raise
            raise translated from exc

    def _presign_part(self, key: str, upload_id: str, number: int, expires: timedelta) -> str:
        # get_presigned_url is public; its extra query parameters turn a PUT into an UploadPart.
        return str(
            self._presign_client.get_presigned_url(
                "PUT",
                self._bucket,
                key,
                expires=expires,
                extra_query_params={"uploadId": upload_id, "partNumber": str(number)},
            )
        )

    def _uploaded_parts(self, key: str, upload_id: str) -> dict[int, Part]:
        uploaded: dict[int, Part] = {}
        marker: str | None = None
        while True:
            result = self._client._list_parts(self._bucket, key, upload_id, part_number_marker=marker)
            uploaded.update((part.part_number, part) for part in result.parts)
            if not result.is_truncated or not result.next_part_number_marker:
                return uploaded
            marker = result.next_part_number_marker


def _in_key_order(entries: Iterator[ArtifactStat | None]) -> Iterator[ArtifactStat | None]:
    """Merges each listing page's files and folders back into one key order.

    S3 sends a page's files and folders (common prefixes) in two sorted lists, and minio yields
    one list after the other; but every entry of a page sorts before the next page's. So files
    are held until a folder or the next page shows they come first. A page holds at most 1,000
    entries (minio asks for that many), so files further back than that are from an earlier page
    and go out at once: memory stays bounded however large the folder.
    """
    held: collections.deque[ArtifactStat] = collections.deque()
    after_folder = False
    for entry in entries:
        if entry is None:
            continue
        if not entry.is_dir:
            if after_folder:  # a new page: what is held belongs to the previous one
                yield from held
                held.clear()
            held.append(entry)
            after_folder = False
            while len(held) >= _LIST_PAGE_SIZE:
                yield held.popleft()
            continue
        while held and held[0].sort_key < entry.sort_key:
            yield held.popleft()
        yield entry
        after_folder = True
    yield from held
