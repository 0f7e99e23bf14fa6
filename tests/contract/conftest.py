"""Fixtures of the contract tests: the raw stubs and bystander of the hostile-input suites (see
tests/contract/hostile.py). The servers (``tracking_server``, ``auth_server``) are tests/servers/'s."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.contract.hostile import Bystander, Stubs, make_bystander, open_stubs, serving, snapshot
from tracklane.testing import LocalServer


@pytest.fixture(scope="module")
def stubs(tracking_server: LocalServer) -> Iterator[Stubs]:
    yield from open_stubs(tracking_server)


@pytest.fixture(scope="module")
def bystander(stubs: Stubs) -> tuple[Bystander, list[bytes]]:
    b = make_bystander(stubs, uuid.uuid4().hex[:10])
    return b, snapshot(stubs, b)


@pytest.fixture
def server_survives(stubs: Stubs, bystander: tuple[Bystander, list[bytes]]) -> Iterator[None]:
    """After the test: the server still answers and the bystander's data is byte-identical."""
    yield
    assert serving(stubs)
    b, before = bystander
    assert snapshot(stubs, b) == before
