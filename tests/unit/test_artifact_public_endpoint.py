"""Presigned URLs name the public S3 endpoint when one is set (clients may reach MinIO elsewhere)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tracklane.exceptions import InvalidArgument
from tracklane_server import settings
from tracklane_server.artifacts import open_store


def test_presigned_urls_use_the_public_endpoint() -> None:
    # Signing is offline once the region is known: no MinIO is needed here.
    common = {"s3_access_key_id": "key", "s3_secret_access_key": "secret", "s3_region": "us-east-1"}
    inside = open_store("s3://bucket/prefix", s3_endpoint_url="http://minio.internal:9000", **common)
    outside = open_store(
        "s3://bucket/prefix",
        s3_endpoint_url="http://minio.internal:9000",
        s3_public_endpoint_url="https://files.example.com",
        **common,
    )
    assert urlsplit(inside.presign_get("a/b.bin")).netloc == "minio.internal:9000"
    url = urlsplit(outside.presign_get("a/b.bin"))
    assert (url.scheme, url.netloc, url.path) == ("https", "files.example.com", "/bucket/prefix/a/b.bin")


@pytest.mark.parametrize("bad", ["ftp://x", "minio:9000", "http://"])
def test_a_bad_public_endpoint_is_refused_at_start(bad: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        settings.load({"s3_public_endpoint_url": bad}, environ={})
    assert err.value.field == "s3_public_endpoint_url"
    with pytest.raises(InvalidArgument) as err:
        open_store("s3://bucket", s3_endpoint_url="http://127.0.0.1:9000", s3_public_endpoint_url=bad)
    assert err.value.field == "s3_public_endpoint_url"
