"""Browser auth on the HTTP listener (real HTTP, both backends): sign-in cookie, CSRF, revocation,
and the same permissions as gRPC for Connect calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from tests.auth_helpers import AuthServer
from tests.connect_helpers import ConnectFailure, unary, unary_json
from tracklane.v1 import auth_pb2, tracking_pb2


@pytest.fixture
def web(auth: AuthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=auth.local.http_url, timeout=30) as client:
        yield client


def sign_in(web: httpx.Client, token: str) -> str:
    """Signs in; returns the CSRF token."""
    reply = web.post("/auth/session", json={"token": token})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["csrf_token"])


def test_sign_in_sets_an_http_only_strict_cookie_and_a_csrf_token(
    auth: AuthServer, web: httpx.Client
) -> None:
    user = auth.create_user("web")
    reply = web.post("/auth/session", json={"token": user.token})
    assert reply.status_code == 200
    assert reply.json()["user"] == user.name
    cookies = {c.split("=", 1)[0]: c.lower() for c in reply.headers.get_list("set-cookie")}
    assert "httponly" in cookies["tracklane_session"]
    assert "samesite=strict" in cookies["tracklane_session"]
    assert "httponly" not in cookies["tracklane_csrf"]  # the page reads it to send the header
    assert user.token not in reply.text  # the body never echoes the token
    assert web.get("/auth/session").json() == {
        "auth": True,
        "signed_in": True,
        "user": user.name,
        "is_admin": False,
    }


def test_cookie_calls_need_the_csrf_header(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("csrf")
    csrf = sign_in(web, user.token)
    who = unary(
        web,
        "AuthService/GetCurrentUser",
        auth_pb2.GetCurrentUserRequest(),
        auth_pb2.GetCurrentUserResponse,
        headers={"x-csrf-token": csrf},
    )
    assert who.user.name == user.name
    for headers in ({}, {"x-csrf-token": csrf[:-1] + "x"}):
        with pytest.raises(ConnectFailure) as refused:
            unary_json(web, "TrackingService/CreateExperiment", {"name": "forged"}, headers=headers)
        assert (refused.value.http_status, refused.value.code) == (403, "permission_denied")
        assert refused.value.fields == ["x-csrf-token"]
    with auth.admin.client() as admin:
        assert admin.get_experiment_by_name("forged") is None  # nothing was done


def test_no_session_is_unauthenticated(web: httpx.Client) -> None:
    with pytest.raises(ConnectFailure) as refused:
        unary_json(web, "TrackingService/SearchExperiments", {})
    assert (refused.value.http_status, refused.value.code) == (401, "unauthenticated")
    assert web.get("/auth/session").json() == {"auth": True, "signed_in": False}


def test_a_bearer_header_works_without_csrf(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("bearer")
    answer = unary_json(
        web, "AuthService/GetCurrentUser", {}, headers={"authorization": f"Bearer {user.token}"}
    )
    assert answer["user"]["name"] == user.name


def test_a_bad_token_is_refused_and_never_logged(
    auth: AuthServer, web: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "tlk_" + "x" * 43
    reply = web.post("/auth/session", json={"token": wrong})
    assert reply.status_code == 401
    assert reply.json()["code"] == "unauthenticated"
    assert "set-cookie" not in reply.headers
    user = auth.create_user("quiet")
    sign_in(web, user.token)
    server_lines = [r.getMessage() for r in caplog.records if r.name.startswith(("tracklane", "uvicorn"))]
    assert server_lines  # the server did log these calls
    assert not [line for line in server_lines if wrong in line or user.token in line]
    assert not [r for r in caplog.records if r.name == "uvicorn.access"]


def test_revoking_the_token_ends_the_session(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("revoked")
    csrf = sign_in(web, user.token)
    headers = {"x-csrf-token": csrf}
    assert unary_json(web, "AuthService/GetCurrentUser", {}, headers=headers)["user"]["name"] == user.name
    tokens = user.auth_stub().ListTokens(auth_pb2.ListTokensRequest(user_name=user.name)).tokens
    auth.admin.auth_stub().RevokeToken(auth_pb2.RevokeTokenRequest(token_id=tokens[0].token_id))
    with pytest.raises(ConnectFailure) as refused:
        unary_json(web, "AuthService/GetCurrentUser", {}, headers=headers)
    assert refused.value.code == "unauthenticated"
    session = web.get("/auth/session")
    assert session.json()["signed_in"] is False
    assert any("max-age=0" in c.lower() for c in session.headers.get_list("set-cookie"))  # cookies cleared


def test_sign_out_needs_csrf_and_clears_the_cookies(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("out")
    csrf = sign_in(web, user.token)
    assert web.delete("/auth/session").status_code == 403
    reply = web.delete("/auth/session", headers={"x-csrf-token": csrf})
    assert reply.status_code == 200
    assert web.get("/auth/session").json()["signed_in"] is False


def test_a_sign_in_posted_by_another_site_is_refused(auth: AuthServer, web: httpx.Client) -> None:
    user = auth.create_user("cross")
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        reply = web.post("/auth/session", json={"token": user.token}, headers=headers)
        assert reply.status_code == 403
        assert "set-cookie" not in reply.headers


def test_permissions_are_the_grpc_ones(auth: AuthServer, web: httpx.Client) -> None:
    owner, stranger = auth.create_user("owner"), auth.create_user("stranger")
    with owner.client() as client:
        experiment_id = client.create_experiment(f"private-{owner.name}")
        run_id = client.create_run(experiment_id).info.run_id
    csrf = sign_in(web, stranger.token)
    headers = {"x-csrf-token": csrf}
    for method, request, response_type in (
        (
            "TrackingService/GetExperiment",
            tracking_pb2.GetExperimentRequest(experiment_id=experiment_id),
            tracking_pb2.GetExperimentResponse,
        ),
        ("TrackingService/GetRun", tracking_pb2.GetRunRequest(run_id=run_id), tracking_pb2.GetRunResponse),
    ):
        with pytest.raises(ConnectFailure) as refused:
            unary(web, method, request, response_type, headers=headers)
        assert refused.value.code == "permission_denied"
    listed = unary_json(web, "TrackingService/SearchExperiments", {}, headers=headers)
    assert experiment_id not in [e["experimentId"] for e in listed.get("experiments", [])]
    with pytest.raises(ConnectFailure) as runs:  # naming an unreadable experiment is refused, as over gRPC
        unary_json(web, "TrackingService/SearchRuns", {"experimentIds": [experiment_id]}, headers=headers)
    assert runs.value.code == "permission_denied"
