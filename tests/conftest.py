"""Shared fixtures: a fresh embedded broker per test that asks for one; PostgreSQL or a skip."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator

import pytest

from streaming.broker import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu broker on a free 127.0.0.1 port, stopped by PID afterwards."""
    with EmbeddedBroker() as running:
        yield running


POSTGRES_ADDRESS = ("127.0.0.1", 5432)
# CI sets it where the server runs (.ci/run): a missing server is then a failure, not a skip.
REQUIRE_POSTGRES = "MMN_REQUIRE_POSTGRES"


@functools.cache
def postgres_answers() -> bool:
    """True when something accepts TCP connections at the PostgreSQL address."""
    try:
        with socket.create_connection(POSTGRES_ADDRESS, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _postgres_server(request: pytest.FixtureRequest) -> None:
    """Tests marked `postgres` are skipped, with the reason, when no server answers."""
    if request.node.get_closest_marker("postgres") is None or postgres_answers():
        return
    where = "{}:{}".format(*POSTGRES_ADDRESS)
    if os.environ.get(REQUIRE_POSTGRES):
        pytest.fail(f"no PostgreSQL server at {where}, and {REQUIRE_POSTGRES} is set")
    pytest.skip(f"no PostgreSQL server at {where} (set {REQUIRE_POSTGRES}=1 to fail instead)")
