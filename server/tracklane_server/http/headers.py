"""Security headers on every HTTP response, as a pure ASGI wrapper (streamed bodies pass untouched).

The page's policy is strict: scripts and styles only from this origin (no inline script, no eval),
``connect-src 'self'`` (the UI talks only to this server), no framing by other sites. A response
that already names its own policy keeps it: artifact downloads send a sandboxing one, so an HTML
file opened from them can run nothing with this origin's cookies.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        # Previews of HTML artifacts: a sandboxed frame of the download endpoint (its own CSP too).
        "frame-src 'self' blob:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_CSP = b"content-security-policy"


class SecurityHeaders:
    """Adds the headers above to each response of ``app`` (HSTS too when served over TLS)."""

    def __init__(self, app: Any, *, tls: bool) -> None:
        self.app = app
        self._extra = ((b"strict-transport-security", b"max-age=31536000"),) if tls else ()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if _CSP not in names:
                    headers.append((_CSP, CONTENT_SECURITY_POLICY.encode()))
                headers.extend(h for h in (*_HEADERS, *self._extra) if h[0] not in names)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
