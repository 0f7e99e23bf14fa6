"""The web UI's built bundle, from the package's ``ui_dist/`` (or ``--ui-dir``), as a single-page app.

Files are indexed once at start. ``/assets/`` holds the build tool's content-hashed files: cached
for a year as immutable. Everything else, ``index.html`` above all, is ``no-cache`` (revalidated
by ETag), so a new release is picked up on the next load. A path that names no file and is not
under ``/assets/`` is a client-side route: it gets ``index.html``. Precompressed siblings
(``.br``, ``.gz``) are sent when the browser accepts them. Without a build, a page says how to
make one; the API is served either way.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

__all__ = ["BUNDLED_UI", "UiFiles"]

#: Where ``pip install`` puts the bundle (package data of tracklane_server).
BUNDLED_UI = Path(str(resources.files("tracklane_server") / "ui_dist"))
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".wasm": "application/wasm",
}
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))

_PLACEHOLDER = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Tracklane</title></head>
<body>
<main>
<h1>Tracklane</h1>
<p>This server runs, but this installation has no built web UI (no <code>index.html</code> in
<code>{root}</code>).</p>
<p>Build it from a source checkout with <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</code>,
or point <code>--ui-dir</code> at a build. The API is served either way: gRPC on the server's
<code>--bind</code> address, Connect for browsers on this one.</p>
</main>
</body>
</html>
"""


@dataclass(frozen=True)
class _File:
    path: Path
    media_type: str
    etag: str
    #: Precompressed variants by content-coding, e.g. {"br": Path("app.js.br")}.
    encoded: dict[str, Path]


class UiFiles:
    """Serves the files under ``root``; ``index.html`` for client routes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files = _index(root)
        self.built = "index.html" in self._files

    async def respond(self, request: Request) -> Response:
        """The file, index.html for a client route, or the placeholder page."""
        if request.method not in {"GET", "HEAD"}:
            return PlainTextResponse("method not allowed", status_code=405, headers={"allow": "GET, HEAD"})
        if not self.built:
            return HTMLResponse(
                _PLACEHOLDER.format(root=self.root), headers={"cache-control": REVALIDATE}, status_code=200
            )
        name = request.url.path.lstrip("/")
        found = self._files.get(name)
        if found is None:
            if name.startswith("assets/"):  # a missing chunk must not come back as HTML
                return PlainTextResponse("not found", status_code=404, headers={"cache-control": REVALIDATE})
            found = self._files["index.html"]
            name = "index.html"
        cache = IMMUTABLE if name.startswith("assets/") else REVALIDATE
        headers = {"cache-control": cache, "etag": found.etag, "vary": "accept-encoding"}
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        path = found.path
        accepted = {
            part.split(";")[0].strip() for part in request.headers.get("accept-encoding", "").split(",")
        }
        for coding, _ in _ENCODINGS:
            if coding in accepted and coding in found.encoded:
                path = found.encoded[coding]
                headers["content-encoding"] = coding
                break
        return FileResponse(path, media_type=found.media_type, headers=headers)


def _index(root: Path) -> dict[str, _File]:
    if not root.is_dir():
        return {}
    files: dict[str, _File] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (path.suffix in {".br", ".gz"} and path.with_suffix("").is_file()):
            continue
        name = path.relative_to(root).as_posix()
        media_type = (
            _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        if media_type.startswith("text/") or media_type in {"application/json", "image/svg+xml"}:
            media_type += "; charset=utf-8"
        encoded = {coding: path.with_name(path.name + ext) for coding, ext in _ENCODINGS}
        files[name] = _File(
            path,
            media_type,
            # Content, not mtime: identical files from two builds or two replicas share the tag.
            f'"{hashlib.blake2b(path.read_bytes(), digest_size=12).hexdigest()}"',
            {coding: p for coding, p in encoded.items() if p.is_file()},
        )
    return files
