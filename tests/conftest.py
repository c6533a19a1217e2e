"""Shared fixtures: a fresh embedded broker per test that asks for one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streaming.broker import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh in-memory Tansu broker on a free 127.0.0.1 port, stopped by PID afterwards."""
    with EmbeddedBroker() as running:
        yield running
