"""TLS and mutual TLS on the real ``tracklane server``, with certificates made here for the test.

A private CA signs the server's certificate (for 127.0.0.1 and localhost) and a client's; a second
CA stands for "someone else's" certificates.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import tracklane
from tests.auth_helpers import BOOTSTRAP_TOKEN
from tests.servers import ServerProcess, ServerStartError, start_server
from tests.tls_helpers import Pki, make_pki
from tracklane import _channel, exceptions
from tracklane.v1 import auth_pb2, auth_pb2_grpc


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """TLS and auth on."""
    data = tmp_path_factory.mktemp("tls") / "data"
    with start_server(
        "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key), "--auth", "true",
        data_dir=data, env={"TRACKLANE_AUTH_BOOTSTRAP_TOKEN": BOOTSTRAP_TOKEN},
    ) as server:  # fmt: skip
        yield server
        server.terminate()


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Mutual TLS: client certificates signed by the test CA required."""
    data = tmp_path_factory.mktemp("mtls") / "data"
    with start_server(
        "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
        "--tls-client-ca-file", str(pki.ca), data_dir=data,
    ) as server:  # fmt: skip
        yield server
        server.terminate()


def test_grpcs_with_the_ca_file_and_a_token(
    tls_server: ServerProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "(TLS, auth on)" in tls_server.listening_lines()[0]
    monkeypatch.setenv(_channel.CA_FILE_ENV, str(pki.ca))
    with tracklane.Client(f"grpcs://127.0.0.1:{tls_server.port}", token=BOOTSTRAP_TOKEN) as client:
        experiment_id = client.create_experiment("over-tls")
        assert client.get_experiment(experiment_id).name == "over-tls"
    with (
        tracklane.Client(f"grpcs://localhost:{tls_server.port}") as anonymous,
        pytest.raises(exceptions.Unauthenticated),
    ):
        anonymous.search_experiments()


def test_grpcs_without_the_ca_is_refused(tls_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_channel.CA_FILE_ENV, raising=False)
    with (
        tracklane.Client(f"grpcs://127.0.0.1:{tls_server.port}", token=BOOTSTRAP_TOKEN, timeout=10) as client,
        pytest.raises(exceptions.Unavailable),
    ):
        client.search_experiments()


def test_plaintext_to_a_tls_server_fails(tls_server: ServerProcess) -> None:
    uri = f"grpc://127.0.0.1:{tls_server.port}"
    with (
        tracklane.Client(uri, token=BOOTSTRAP_TOKEN, timeout=10) as client,
        pytest.raises(exceptions.Unavailable),
    ):
        client.search_experiments()


def test_the_ca_file_argument_and_a_raw_stub(tls_server: ServerProcess, pki: Pki) -> None:
    channel = _channel.make_channel(
        f"grpcs://127.0.0.1:{tls_server.port}", ca_file=str(pki.ca), token=BOOTSTRAP_TOKEN
    )
    with channel:
        user = auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(), timeout=30
        )
    assert user.user.name == "admin"


def test_mtls_refuses_a_client_without_a_certificate(mtls_server: ServerProcess, pki: Pki) -> None:
    assert "(mutual TLS, auth off)" in mtls_server.listening_lines()[0]
    with _channel.make_channel(f"grpcs://127.0.0.1:{mtls_server.port}", ca_file=str(pki.ca)) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mtls_refuses_a_certificate_from_another_ca(mtls_server: ServerProcess, pki: Pki) -> None:
    channel = _channel.make_channel(
        f"grpcs://127.0.0.1:{mtls_server.port}",
        ca_file=str(pki.ca),
        client_cert_file=str(pki.stranger_cert),
        client_key_file=str(pki.stranger_key),
    )
    with channel, pytest.raises(grpc.RpcError) as err:
        auth_pb2_grpc.AuthServiceStub(channel).GetCurrentUser(auth_pb2.GetCurrentUserRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_mtls_accepts_the_client_certificate_from_the_environment(
    mtls_server: ServerProcess, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_channel.CA_FILE_ENV, str(pki.ca))
    monkeypatch.setenv(_channel.CLIENT_CERT_FILE_ENV, str(pki.client_cert))
    monkeypatch.setenv(_channel.CLIENT_KEY_FILE_ENV, str(pki.client_key))
    with tracklane.Client(f"grpcs://127.0.0.1:{mtls_server.port}") as client:
        run = client.create_run(client.create_experiment("mtls"))
        assert client.get_run(run.info.run_id).info.run_id == run.info.run_id


def test_a_file_that_is_no_key_stops_the_server_with_one_line(pki: Pki, tmp_path: Path) -> None:
    broken = tmp_path / "key.pem"
    broken.write_text("not a key")
    with pytest.raises(ServerStartError) as err:
        start_server(
            "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(broken),
            data_dir=tmp_path / "data", ready_timeout=20,
        )  # fmt: skip
    assert f"tracklane: error: --tls-key-file: {broken} holds no PEM private key" in str(err.value)


def test_a_key_of_another_certificate_stops_the_server_with_one_line(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ServerStartError) as err:
        start_server(
            "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.client_key),
            data_dir=tmp_path / "data", ready_timeout=20,
        )  # fmt: skip
    assert "--tls-key-file is the private key of --tls-cert-file" in str(err.value)
