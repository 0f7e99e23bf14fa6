"""The HTTP listener serving the UI bundle (real HTTP): caching, precompressed files, client-route
fallback, the placeholder without a build, security headers on every response, IPv6."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import brotli
import httpx
import pytest

from tracklane.testing import LocalServer

APP_JS = b"console.log('tracklane');\n" * 50


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UI build as Vite lays it out: index.html, hashed assets (with .br/.gz siblings), a favicon."""
    root = tmp_path_factory.mktemp("ui-dist")
    (root / "index.html").write_text(
        '<!doctype html><script type="module" src="/assets/app-3f9a1c.js"></script>'
    )
    assets = root / "assets"
    assets.mkdir()
    (assets / "app-3f9a1c.js").write_bytes(APP_JS)
    (assets / "app-3f9a1c.js.br").write_bytes(brotli.compress(APP_JS))
    (assets / "app-3f9a1c.js.gz").write_bytes(gzip.compress(APP_JS))
    (assets / "style-77aa01.css").write_text("body{color:black}")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return root


@pytest.fixture(scope="module")
def web(build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        LocalServer(tmp_path_factory.mktemp("ui-data"), ui_dir=str(build)) as server,
        httpx.Client(base_url=server.http_url, timeout=30) as client,
    ):
        yield client


def test_index_and_client_routes_get_index_html_revalidated(web: httpx.Client) -> None:
    for path in ("/", "/experiments/1/runs", "/models/my-model/versions/3"):
        reply = web.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["content-type"].startswith("text/html")
        assert "/assets/app-3f9a1c.js" in reply.text
        assert reply.headers["cache-control"] == "no-cache"
    again = web.get("/", headers={"if-none-match": reply.headers["etag"]})
    assert again.status_code == 304


def test_hashed_assets_are_immutable_and_precompressed(web: httpx.Client) -> None:
    br = web.get("/assets/app-3f9a1c.js", headers={"accept-encoding": "gzip, br"})
    assert br.headers["content-encoding"] == "br"
    assert br.content == APP_JS  # httpx decodes br (the brotli package)
    assert br.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert br.headers["content-type"].startswith("text/javascript")
    assert "accept-encoding" in br.headers["vary"].lower()
    gz = web.get("/assets/app-3f9a1c.js", headers={"accept-encoding": "gzip"})
    assert (gz.headers["content-encoding"], gz.content) == ("gzip", APP_JS)
    plain = web.get("/assets/app-3f9a1c.js", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == APP_JS
    assert web.get("/assets/style-77aa01.css").headers["content-type"].startswith("text/css")


def test_a_missing_asset_is_404_not_the_page(web: httpx.Client) -> None:
    reply = web.get("/assets/app-000000.js")
    assert reply.status_code == 404
    assert "html" not in reply.headers["content-type"]


def test_every_response_has_the_security_headers(web: httpx.Client) -> None:
    for reply in (
        web.get("/"),
        web.get("/assets/app-3f9a1c.js"),
        web.get("/assets/nope.js"),
        web.post("/tracklane.v1.TrackingService/SearchExperiments", json={}),
        web.post("/tracklane.v1.TrackingService/GetRun", json={"runId": "x"}),  # an error
        web.get("/auth/session"),
    ):
        csp = reply.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"  # no inline script, no eval
        assert directives["connect-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"


def test_without_a_build_a_placeholder_says_how_to_make_one(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "data", ui_dir=str(tmp_path / "no-build")) as server:
        reply = httpx.get(f"{server.http_url}/experiments/1")
    assert reply.status_code == 200
    assert "npm run build" in reply.text
    assert "<script" not in reply.text


def test_http_on_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with LocalServer(tmp_path / "data", http_bind="[::1]:0") as server:
        reply = httpx.post(
            f"http://[::1]:{server.http_port}/tracklane.v1.TrackingService/SearchExperiments", json={}
        )
    assert reply.status_code == 200
    assert [e["name"] for e in reply.json()["experiments"]] == ["Default"]


def test_http_off(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "data", http_bind="none") as server:
        assert server.http_url == ""
