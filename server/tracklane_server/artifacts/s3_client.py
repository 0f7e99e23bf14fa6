"""Shared ``minio`` clients and the one place S3 and network errors become Tracklane errors.

The server opens a store per run artifact root, so clients (each with its own connection pool)
are cached per endpoint and key instead of being built per store.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from tracklane.exceptions import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    TracklaneError,
    Unavailable,
)

__all__ = ["Endpoint", "parse_endpoint", "s3_errors", "shared_client", "translate_error"]

# A refused connection is retried twice (about 0.4 s in all) rather than minio's default five
# times (about 6 s): the server should report UNAVAILABLE promptly, the client retries anyway.
_RETRIES = urllib3.Retry(
    total=3,
    connect=2,
    read=2,
    backoff_factor=0.2,
    status_forcelist=[500, 502, 503, 504],
    # Hand the last 5xx to minio so the error carries the S3 code (SlowDown...), not a bare MaxRetryError.
    raise_on_status=False,
)
# Bodies are parts of up to 8 MiB; 5 minutes to read one means the store is effectively down.
_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)
# Above the server's default 16 threads plus the part-upload pool, so connections are reused.
_POOL_SIZE = 64

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AuthorizationHeaderMalformed",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint: ``host[:port]`` for minio, TLS or not, and a credential-free display form."""

    host: str
    secure: bool
    display: str


def parse_endpoint(url: str, *, field: str = "s3_endpoint_url") -> Endpoint:
    """Parses ``http(s)://host[:port]``; ``""`` means AWS S3.

    Raises:
        InvalidArgument: Not an http(s) URL of a host (field ``field``).
    """
    if not url:
        return Endpoint("s3.amazonaws.com", True, "https://s3.amazonaws.com")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        # The URL is not echoed back: a mistyped one may well contain a key.
        raise InvalidArgument(
            "S3 endpoint URL must look like http://HOST:PORT or https://HOST (no path, no credentials)",
            field=field,
        )
    return Endpoint(parts.netloc, parts.scheme == "https", f"{parts.scheme}://{parts.netloc}")


@functools.lru_cache(maxsize=32)
def shared_client(endpoint_url: str, access_key_id: str, secret_access_key: str, region: str) -> Minio:
    """The cached client for an endpoint and key (thread-safe; one connection pool each).

    Args:
        endpoint_url: ``http(s)://host:port``, or ``""`` for AWS S3.
        access_key_id: Empty for anonymous access.
        secret_access_key: The key's secret.
        region: Bucket region; empty to ask the endpoint once per bucket.
    """
    endpoint = parse_endpoint(endpoint_url)
    http = urllib3.PoolManager(
        timeout=_TIMEOUT, retries=_RETRIES, maxsize=_POOL_SIZE, cert_reqs="CERT_REQUIRED"
    )
    return _Minio(
        endpoint.host,
        access_key=access_key_id or None,
        secret_key=secret_access_key if access_key_id else None,
        secure=endpoint.secure,
        region=region or None,
        http_client=http,
    )


# Request bodies from this size on are sent with an unsigned payload (see _Minio).
_UNSIGNED_PAYLOAD_FROM = 64 * 1024


class _Minio(Minio):
    """minio's client, minus a hash pass over every part it uploads.

    minio signs a request body's SHA-256 over http (a full extra pass over each part: on a 2-core
    server, about a quarter of a proxied upload's CPU) and sends its MD5 over https. SigV4 allows
    ``UNSIGNED-PAYLOAD`` instead, as the AWS CLI uses over https; the content is protected by
    TCP/TLS on the way and by the server's own SHA-256 of the whole file, computed as it arrives.
    Small bodies (XML requests) are signed as before. Parts may also be a ``PartBody`` (several
    buffers, see s3_writer), which only has a length.
    """

    def _build_headers(
        self, host: str, headers: Any = None, body: bytes | None = None, creds: Any = None
    ) -> tuple[Any, Any]:
        small = isinstance(body, bytes | bytearray | memoryview) and len(body) < _UNSIGNED_PAYLOAD_FROM
        if body is None or creds is None or small:
            return super()._build_headers(host, headers, body, creds)
        built, date = super()._build_headers(host, headers, None, creds)
        built["Content-Length"] = str(len(body))
        built["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        return built, date


@contextmanager
def s3_errors(endpoint: str, bucket: str, path: str = "") -> Iterator[None]:
    """Turns S3 and network errors raised inside the block into Tracklane errors."""
    try:
        yield
    except TracklaneError:
        raise
    except Exception as exc:
        translated = translate_error(exc, endpoint, bucket, path)
        if translated is None:
            raise
        raise translated from exc


def translate_error(exc: BaseException, endpoint: str, bucket: str, path: str = "") -> TracklaneError | None:
    """The Tracklane error for an exception from minio or urllib3, or None to let it through.

    Messages name the endpoint and bucket but never keys, secrets or signed URLs.
    """
    where = f"the object store at {endpoint}"
    if isinstance(exc, S3Error):
        code = exc.code or ""
        if code == "NoSuchKey":
            return NotFound(f"no file at artifact path {path!r}")
        if code == "NoSuchUpload":
            return NotFound("no such upload: it was completed, aborted or has expired; start a new one")
        if code == "NoSuchBucket":
            return FailedPrecondition(f"bucket {bucket!r} does not exist at {endpoint}; create it first")
        if code in _AUTH_CODES:
            return Unavailable(
                f"{where} refused the server's credentials ({code}); check the S3 access key and secret"
            )
        if code == "InvalidRange":
            return InvalidArgument("offset is past the end of the file", field="offset")
        if code == "KeyTooLongError":
            return InvalidArgument(f"artifact path {path!r} is too long for this artifact root", field="path")
        if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            return InvalidArgument(f"the uploaded parts were refused ({code})", field="parts")
        status = exc.response.status if exc.response is not None else 0
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "XMinioServerNotInitialized"):
            return Unavailable(f"{where} is unavailable ({code or status}); retry later")
        return Internal(f"{where} failed: {code} {exc.message or ''}".strip())
    if isinstance(exc, ServerError):
        return Unavailable(f"{where} is unavailable (HTTP {exc.status_code}); retry later")
    if isinstance(exc, InvalidResponseError):
        return Unavailable(f"{where} did not answer like an S3 server; check the endpoint URL")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return Unavailable(f"cannot reach {where}: {_reason(exc)}")
    return None


def _reason(exc: BaseException) -> str:
    # MaxRetryError's own message holds the request URL; its cause says what actually happened,
    # e.g. "HTTPConnection(host=..., port=1): Failed to establish a new connection: [Errno 111] ...".
    reason = getattr(exc, "reason", None) if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    text = str(reason or exc).splitlines()[0] if str(reason or exc) else type(exc).__name__
    text = text.rsplit(": ", 1)[-1]
    return text if len(text) <= 160 else text[:157] + "..."
