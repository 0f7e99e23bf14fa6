"""Opens the artifact store for a ``file:///`` or ``s3://`` URI.

The server opens one store per run artifact root, so this must stay cheap: S3 stores share a
cached client per endpoint and key (see :func:`.s3_client.shared_client`), and nothing here
touches the network. The server calls ``ensure_ready()`` once, at start, on the default root.
"""

from __future__ import annotations

from urllib.parse import urlsplit
from urllib.request import url2pathname

from minio.helpers import check_bucket_name

from tracklane.exceptions import InvalidArgument

from .base import ArtifactStore
from .local import LocalArtifactStore
from .paths import validate_artifact_path
from .s3 import S3ArtifactStore
from .s3_client import parse_endpoint, shared_client

__all__ = ["open_store"]

_FIELD = "artifact_uri"


def open_store(
    uri: str,
    *,
    s3_endpoint_url: str = "",
    s3_access_key_id: str = "",
    s3_secret_access_key: str = "",
    s3_region: str = "",
    s3_public_endpoint_url: str = "",
    local_base: str = "",
    private: bool = False,
) -> ArtifactStore:
    """The store for an artifact root URI.

    Args:
        uri: ``file:///absolute/folder`` or ``s3://bucket[/prefix]``.
        s3_endpoint_url: ``http(s)://host:port`` of MinIO or another S3; ``""`` for AWS S3.
        s3_access_key_id: S3 access key; ``""`` for anonymous access.
        s3_secret_access_key: Its secret.
        s3_region: Bucket region; ``""`` to ask the endpoint.
        s3_public_endpoint_url: The endpoint as clients reach it, for presigned URLs; ``""``: the same.
        local_base: For ``file:`` URIs, the configured root the folder is in: symbolic links are
            not followed from there down (see LocalArtifactStore). ``""``: the folder itself.
        private: For ``file:`` URIs, create files 0600 and folders 0700.

    Returns:
        A :class:`LocalArtifactStore` or :class:`S3ArtifactStore`; the folder or bucket may not
        exist yet.

    Raises:
        InvalidArgument: An unsupported or malformed URI (field ``artifact_uri``), or a malformed
            endpoint URL (field ``s3_endpoint_url``).
    """
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise InvalidArgument(
                f"artifact URI {uri!r} must look like file:///absolute/folder", field=_FIELD
            )
        return LocalArtifactStore(url2pathname(parts.path), base=local_base, private=private)
    if parts.scheme == "s3":
        if "@" in parts.netloc:
            # Never echo it: the part before '@' is probably a key.
            raise InvalidArgument("s3:// artifact URIs must not contain credentials", field=_FIELD)
        if parts.query or parts.fragment:
            raise InvalidArgument(f"artifact URI {uri!r} must look like s3://bucket/prefix", field=_FIELD)
        bucket = parts.netloc
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError:
            raise InvalidArgument(
                f"artifact URI {uri!r}: {bucket!r} is not a valid bucket name "
                "(3-63 characters: a-z, 0-9, '.', '-')",
                field=_FIELD,
            ) from None
        prefix = validate_artifact_path(parts.path[1:], field=_FIELD, allow_empty=True)
        endpoint = parse_endpoint(s3_endpoint_url)
        client = shared_client(s3_endpoint_url, s3_access_key_id, s3_secret_access_key, s3_region)
        presign_client = None
        if s3_public_endpoint_url and s3_public_endpoint_url != s3_endpoint_url:
            parse_endpoint(s3_public_endpoint_url, field="s3_public_endpoint_url")
            # Signing needs the region, and the public address may be unreachable from the server:
            # never ask it; MinIO's default region unless one is configured.
            presign_client = shared_client(
                s3_public_endpoint_url, s3_access_key_id, s3_secret_access_key, s3_region or "us-east-1"
            )
        return S3ArtifactStore(
            client, bucket, prefix, endpoint=endpoint.display, region=s3_region, presign_client=presign_client
        )
    shown = f"{parts.scheme}://..." if "@" in uri else repr(uri)
    raise InvalidArgument(
        f"unsupported artifact URI {shown}; use file:///FOLDER or s3://BUCKET/PREFIX", field=_FIELD
    )
