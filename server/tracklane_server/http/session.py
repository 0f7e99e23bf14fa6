"""Browser sign-in: an API token in an HttpOnly cookie, a double-submit CSRF token beside it.

``POST /auth/session`` with ``{"token": "..."}`` checks the token by calling
``AuthService.GetCurrentUser`` with it through the same dispatcher as every call (so the same
authentication code decides), then sets two cookies: the session (HttpOnly, SameSite=Strict,
Secure over TLS; its value is the token, which page scripts can therefore never read) and the CSRF
token (readable by the page). Every later call the cookie authenticates that is not a GET or HEAD
must echo the CSRF cookie in the ``x-csrf-token`` header, else PERMISSION_DENIED. A call with its
own ``authorization`` header (curl, other programs) uses that and needs no CSRF token: it carries
no ambient credential. ``GET /auth/session`` says whether auth is on and who is signed in;
``DELETE /auth/session`` signs out.

The session is the token itself, not a server-side record: every call resolves it like a gRPC
call's token, so a revoked or expired token ends the session at once, on every worker and replica,
with no session table to keep in step. Tokens never reach a URL, a log line or an error message.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tracklane.exceptions import PermissionDenied, TracklaneError, Unauthenticated
from tracklane.v1 import auth_pb2
from tracklane_server.http.call_context import HttpAbort, HttpCallContext, Metadata, peer_of
from tracklane_server.http.dispatch import Dispatcher

__all__ = ["CSRF_HEADER", "Sessions"]

CSRF_HEADER = "x-csrf-token"
_SESSION = "tracklane_session"
_CSRF = "tracklane_csrf"
#: A week; the token's own expiry (and revocation) still applies to every call.
SESSION_MAX_AGE_SECONDS = 7 * 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_WHO_AM_I = "/tracklane.v1.AuthService/GetCurrentUser"
_BODY_MAX = 4096


class Sessions:
    """Turns a request's cookie or header into call credentials; serves /auth/session."""

    def __init__(self, dispatcher: Dispatcher, *, auth: bool, tls: bool) -> None:
        self._dispatcher = dispatcher
        self.auth = auth
        self.tls = tls
        # "__Host-" cookies must be Secure, for path / and no domain: a sibling subdomain cannot set them.
        prefix = "__Host-" if tls else ""
        self.session_cookie = prefix + _SESSION
        self.csrf_cookie = prefix + _CSRF

    # -- credentials of a call ----------------------------------------------------------------------

    def call_metadata(self, headers: Any, http_method: str, metadata: Metadata) -> Metadata:
        """``metadata`` plus ``authorization: Bearer <session token>`` when the session cookie
        authenticates the call (and no authorization header was sent).

        Raises:
            PermissionDenied: a cookie-authenticated call that changes state without the CSRF header.
        """
        if not self.auth or any(name == "authorization" for name, _ in metadata):
            return metadata
        cookies = cookie_parser(_header(headers, "cookie"))
        token = cookies.get(self.session_cookie, "")
        if not token:
            return metadata
        if http_method.upper() not in _SAFE_METHODS:
            self.check_csrf(_header(headers, CSRF_HEADER), cookies.get(self.csrf_cookie, ""))
        return (*metadata, ("authorization", f"Bearer {token}"))

    @staticmethod
    def check_csrf(sent: str, expected: str) -> None:
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise PermissionDenied(
                f"{CSRF_HEADER}: send the value of the CSRF cookie in this header with every call "
                "that is not a GET (the web UI does)",
                field=CSRF_HEADER,
                reason="CSRF_TOKEN_MISSING",
            )

    # -- /auth/session ------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route("/auth/session", self._endpoint, methods=["GET", "POST", "DELETE"])]

    async def _endpoint(self, request: Request) -> Response:
        try:
            if request.method == "POST":
                return await self._sign_in(request)
            if request.method == "DELETE":
                return self._sign_out(request)
            return await self._who(request)
        except TracklaneError as exc:
            return _error(exc.code.name.lower(), exc.message, _status(exc))

    async def _who(self, request: Request) -> Response:
        if not self.auth:
            return JSONResponse({"auth": False, "signed_in": False})
        token = request.cookies.get(self.session_cookie, "")
        if not token:
            return JSONResponse({"auth": True, "signed_in": False})
        try:
            user = await self._current_user(token, request)
        except Unauthenticated:
            response = JSONResponse({"auth": True, "signed_in": False})
            self._clear(response)
            return response
        return JSONResponse({"auth": True, "signed_in": True, "user": user.name, "is_admin": user.is_admin})

    async def _sign_in(self, request: Request) -> Response:
        _same_origin(request)
        if not self.auth:
            return _error(
                "failed_precondition", "auth is off on this server: there is nothing to sign in to", 400
            )
        token = await _token_of(request)
        user = await self._current_user(token, request)
        csrf = secrets.token_urlsafe(32)
        response = JSONResponse(
            {
                "auth": True,
                "signed_in": True,
                "user": user.name,
                "is_admin": user.is_admin,
                "csrf_token": csrf,
            }
        )
        cookie = {"max_age": SESSION_MAX_AGE_SECONDS, "path": "/", "secure": self.tls, "samesite": "strict"}
        response.set_cookie(self.session_cookie, token, httponly=True, **cookie)  # type: ignore[arg-type]
        response.set_cookie(self.csrf_cookie, csrf, httponly=False, **cookie)  # type: ignore[arg-type]
        return response

    def _sign_out(self, request: Request) -> Response:
        if request.cookies.get(self.session_cookie):
            self.check_csrf(request.headers.get(CSRF_HEADER, ""), request.cookies.get(self.csrf_cookie, ""))
        response = JSONResponse({"auth": self.auth, "signed_in": False})
        self._clear(response)
        return response

    def _clear(self, response: Response) -> None:
        for name in (self.session_cookie, self.csrf_cookie):
            response.delete_cookie(name, path="/", secure=self.tls, samesite="strict")

    async def _current_user(self, token: str, request: Request) -> auth_pb2.User:
        """Who ``token`` is, decided by the server's authentication through the dispatcher.

        Raises:
            Unauthenticated: the token is unknown, expired or revoked.
        """
        client = request.client
        context = HttpCallContext(
            (("authorization", f"Bearer {token}"),), peer_of((client.host, client.port) if client else None)
        )
        try:
            response = await self._dispatcher.unary(_WHO_AM_I, auth_pb2.GetCurrentUserRequest(), context)
        except HttpAbort as abort:
            raise Unauthenticated(abort.details or "the token is unknown, expired or revoked") from None
        user: auth_pb2.User = response.user
        return user


def _header(headers: Any, name: str) -> str:
    value = headers.get(name, "")
    return value if isinstance(value, str) else ""


def _same_origin(request: Request) -> None:
    """A sign-in posted by another site's page is refused (login CSRF), by the browser's own word."""
    site = request.headers.get("sec-fetch-site", "")
    origin = request.headers.get("origin", "")
    host = request.headers.get("host", "")
    if site not in {"", "same-origin", "none"} or (origin and origin.split("://", 1)[-1] != host):
        raise PermissionDenied("sign in from this server's own page", reason="CROSS_SITE_REQUEST")


async def _token_of(request: Request) -> str:
    body = await request.body()
    if len(body) > _BODY_MAX:
        raise Unauthenticated('the sign-in request is too large: send {"token": "..."}')
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        parsed = None
    token = parsed.get("token") if isinstance(parsed, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise Unauthenticated('send the API token as JSON: {"token": "..."}', reason="TOKEN_MISSING")
    return token.strip()


def _status(exc: TracklaneError) -> int:
    return {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}.get(exc.code.name, 400)


def _error(code: str, message: str, status: int) -> Response:
    """The same JSON shape as a Connect error body."""
    return JSONResponse({"code": code, "message": message}, status_code=status)
