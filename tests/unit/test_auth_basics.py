"""Token secrets and hashing, the Bearer header, the auth and TLS settings, the client's token checks."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tracklane import _channel
from tracklane.exceptions import InvalidArgument, Unauthenticated
from tracklane_server.auth.authenticate import bearer_token, credentials
from tracklane_server.identity import tokens
from tracklane_server.settings import is_loopback, load
from tracklane_server.store.users import check_user_name


def test_secrets_are_fresh_prefixed_and_stored_as_sha256() -> None:
    made = {tokens.new_secret() for _ in range(100)}
    assert len(made) == 100
    secret = made.pop()
    assert secret.startswith("tlk_")
    assert len(secret) == len("tlk_") + 43  # 32 random bytes, URL-safe base64
    assert tokens.hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert tokens.hashes_match(tokens.hash_secret(secret), tokens.hash_secret(secret))
    assert not tokens.hashes_match(tokens.hash_secret(secret), tokens.hash_secret(secret + "x"))
    assert len({tokens.new_token_id() for _ in range(100)}) == 100


@pytest.mark.parametrize("secret", ["short", "x" * 31, "y" * 40 + " z", "ü" * 40, "a" * 2000])
def test_a_supplied_secret_must_be_long_printable_ascii_and_is_never_echoed(secret: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        tokens.check_supplied_secret(secret, "auth_bootstrap_token")
    assert err.value.field == "auth_bootstrap_token"
    assert secret not in err.value.message


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ([("authorization", "Bearer tlk_abc")], "tlk_abc"),
        ([("authorization", "bearer  tlk_abc ")], "tlk_abc"),
        ([("user", "x"), ("authorization", b"Bearer tlk_abc")], "tlk_abc"),
    ],
)
def test_bearer_token_is_read_from_the_authorization_metadata(
    metadata: list[tuple[str, str | bytes]], token: str
) -> None:
    assert bearer_token(metadata) == token


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (None, "TOKEN_MISSING"),
        ([("user", "x")], "TOKEN_MISSING"),
        ([("authorization", "Basic dXNlcnBhc3M=")], "TOKEN_MALFORMED"),  # "userpass": no colon
        ([("authorization", "Basic OnRsa19hYmM=")], "TOKEN_MALFORMED"),  # ":tlk_abc": no user name
        ([("authorization", "Basic dXNlcjo=")], "TOKEN_MALFORMED"),  # "user:": no token
        ([("authorization", "Basic not*base64")], "TOKEN_MALFORMED"),
        ([("authorization", "Digest dXNlcjpwYXNz")], "TOKEN_MALFORMED"),
        ([("authorization", "Bearer")], "TOKEN_MALFORMED"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "TOKEN_MALFORMED"),
    ],
)
def test_bad_authorization_metadata_is_unauthenticated(
    metadata: list[tuple[str, str]] | None, reason: str
) -> None:
    with pytest.raises(Unauthenticated) as err:
        bearer_token(metadata)
    assert err.value.reason == reason
    assert "dXNlcjpwYXNz" not in err.value.message


def test_basic_credentials_are_a_user_name_and_a_token() -> None:
    """What the mlflow client sends for MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD."""
    encoded = base64.b64encode(b"alice:tlk_abc").decode()
    assert credentials([("authorization", f"Basic {encoded}")]) == ("tlk_abc", "alice")
    assert credentials([("authorization", "Bearer tlk_abc")]) == ("tlk_abc", "")


@pytest.mark.parametrize("name", ["alice", "a.b-c_d@example.com+ci", "x" * 256])
def test_user_names_that_are_allowed(name: str) -> None:
    assert check_user_name(name, "user.name") == name


@pytest.mark.parametrize("name", ["", "with space", "x" * 257, "semi;colon", "naïve", "a\nb"])
def test_user_names_that_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_user_name(name, "user.name")
    assert err.value.field == "user.name"


def test_auth_is_off_by_default_on_loopback() -> None:
    settings = load({}, environ={})
    assert (settings.auth, settings.host_port[0]) == (False, "127.0.0.1")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "[::1]", "localhost"])
def test_loopback_binds_need_no_auth(host: str) -> None:
    assert load({"bind": f"{host}:0"}, environ={}).auth is False


@pytest.mark.parametrize("bind", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "tracking.example.com:1"])
def test_a_public_bind_without_auth_is_refused_naming_the_override(bind: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        load({"bind": bind}, environ={})
    assert err.value.field == "bind"
    assert "--auth true" in err.value.message
    assert "--allow-public-without-auth true" in err.value.message


@pytest.mark.parametrize(
    "environ",
    [
        {"TRACKLANE_BIND": "0.0.0.0:50051", "TRACKLANE_AUTH": "true"},
        {"TRACKLANE_BIND": "0.0.0.0:50051", "TRACKLANE_ALLOW_PUBLIC_WITHOUT_AUTH": "1"},
    ],
)
def test_a_public_bind_is_allowed_with_auth_or_the_override(environ: dict[str, str]) -> None:
    assert load({}, environ=environ).host_port == ("0.0.0.0", 50051)


def test_is_loopback() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "example.com")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_tls_settings_come_in_pairs_and_must_exist(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("pem")
    assert load(
        {"tls_cert_file": str(cert), "tls_key_file": str(key), "tls_client_ca_file": str(ca)}, environ={}
    )
    refused = {
        "tls_key_file": {"tls_cert_file": str(cert)},
        "tls_cert_file": {"tls_key_file": str(key)},
        "tls_client_ca_file": {"tls_client_ca_file": str(ca)},
    }
    for field, given in refused.items():
        with pytest.raises(InvalidArgument) as err:
            load(given, environ={})
        assert err.value.field == field
    with pytest.raises(InvalidArgument) as missing:
        load({"tls_cert_file": str(tmp_path / "nope.pem"), "tls_key_file": str(key)}, environ={})
    assert missing.value.field == "tls_cert_file"


def test_the_bootstrap_token_is_not_in_the_settings_repr() -> None:
    secret = "tlk_" + "s" * 40
    settings = load({"auth": "true", "auth_bootstrap_token": secret}, environ={})
    assert settings.auth_bootstrap_token == secret
    assert secret not in repr(settings)


def test_client_token_comes_from_the_argument_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_channel.TOKEN_ENV, "tlk_from-env")
    assert _channel.resolve_token(None) == "tlk_from-env"
    assert _channel.resolve_token("tlk_given") == "tlk_given"
    monkeypatch.delenv(_channel.TOKEN_ENV)
    assert _channel.resolve_token(None) == ""


@pytest.mark.parametrize("token", ["tlk_with space", "tlk_\nnewline", "tlk_ünïcode"])
def test_client_refuses_a_token_metadata_cannot_carry_without_echoing_it(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _channel.make_channel("grpc://127.0.0.1:1", token=token)
    assert err.value.field == "token"
    assert token not in err.value.message


def test_client_certificate_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("pem")
    with pytest.raises(InvalidArgument) as err:
        _channel.make_channel("grpcs://127.0.0.1:1", client_cert_file=str(cert))
    assert err.value.field == "client_key_file"
    with pytest.raises(InvalidArgument) as unreadable:
        _channel.make_channel("grpcs://127.0.0.1:1", ca_file=str(tmp_path / "missing.pem"))
    assert unreadable.value.field == "ca_file"
