"""Shared fixtures: a fresh embedded broker per test that asks for one; PostgreSQL or a skip."""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from ab_stream import publish_snapshots
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ops.store.database import make_engine, open_registry
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


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def registry(request: pytest.FixtureRequest, tmp_path) -> Iterator[sessionmaker[Session]]:
    """A freshly migrated registry: a SQLite file, or a unique schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
        return
    schema = f"test_registry_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        Session = open_registry(POSTGRES_URL, schema=schema)
        yield Session
        Session.kw["bind"].dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def registry_with_snapshots(tmp_path) -> sessionmaker[Session]:
    """A SQLite registry where two runs have snapshots at known watermarks (tests/ab_stream.py)."""
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    publish_snapshots(Session, tmp_path / "snapshots")
    return Session


@pytest.fixture(scope="session")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> list:
    """50,000 clicks over 20 days (tests/joiner_support.py synthetic_records), made once."""
    from joiner_support import synthetic_records

    return synthetic_records(tmp_path_factory.mktemp("big"), clicks=50_000, days=20)
