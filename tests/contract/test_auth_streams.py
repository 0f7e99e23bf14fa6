"""Metric streams with auth on: the fluent API and ``Client.metric_stream()`` send the caller's
token (from $TRACKLANE_TRACKING_TOKEN or the client), and a refused stream fails fast instead of
retrying or spooling forever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracklane
from tests.auth_helpers import AuthServer
from tests.fluent_helpers import fluent_on
from tracklane import exceptions


@pytest.fixture
def fl(auth: AuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fluent module on the auth server with a private metric spool and no token set."""
    with fluent_on(auth.uri, tmp_path / "spool", monkeypatch, "TRACKLANE_TRACKING_TOKEN") as module:
        yield module


def test_fluent_logging_uses_the_token_from_the_environment(
    auth: AuthServer, fl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = auth.create_user("alice")
    monkeypatch.setenv("TRACKLANE_TRACKING_TOKEN", alice.token)
    fl.set_experiment(f"fluent-{alice.name}")  # created by alice: she may manage it
    with fl.start_run() as run:
        for step in range(5_000):
            fl.log_metric("loss", step / 7, step=step)
        fl.log_param("lr", "0.1")
    history = alice.client().get_metric_history(run.info.run_id, "loss")
    assert list(history.steps) == list(range(5_000))
    assert list(history.values) == [step / 7 for step in range(5_000)]
    assert run.info.user_id == alice.name  # recorded from the token, not from the login name


def test_a_stream_with_a_wrong_token_is_refused_not_retried(auth: AuthServer, tmp_path: Path) -> None:
    with auth.admin.client() as admin:
        run_id = admin.create_run(admin.create_experiment(f"refused-{id(auth)}")).info.run_id
        with tracklane.Client(auth.uri, token="tlk_not-a-token") as intruder:
            stream = intruder.metric_stream(flush_timeout=60, spool_dir=tmp_path)
            stream.log_metric(run_id, "loss", 1.0, step=1)
            with pytest.raises(exceptions.Unauthenticated):
                stream.flush()  # at once: the timeout (60 s) would raise Unavailable
            with pytest.raises(exceptions.Unauthenticated):
                stream.close()  # still undelivered (kept in the spool for a `tracklane sync`)
        assert len(admin.get_metric_history(run_id, "loss").steps) == 0
