"""Run leases in the registry: one writer per run, stale holders taken over, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ops.errors import LeaseError
from ops.store.database import RunLease
from ops.store.leases import holder, take_lease


def _age(Session, run: str, seconds: float) -> None:
    """Move the holder's heartbeat into the past, as a trainer that stopped renewing leaves it."""
    with Session.begin() as session:
        session.execute(
            update(RunLease)
            .where(RunLease.run == run)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


def test_a_held_run_is_refused_naming_the_holder(registry) -> None:
    lease = take_lease(registry, "dup", timeout_s=60)
    with pytest.raises(LeaseError) as refused:
        take_lease(registry, "dup", timeout_s=60)
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message and "since" in message and "'dup'" in message
    assert take_lease(registry, "other", timeout_s=60).run == "other"  # per run, not global
    lease.release()
    assert holder(registry, "dup") is None
    assert take_lease(registry, "dup", timeout_s=60).owner != lease.owner


def test_a_stale_lease_is_taken_over_and_the_takeover_is_logged(registry, caplog) -> None:
    first = take_lease(registry, "dup", timeout_s=30)
    _age(registry, "dup", 31)
    with caplog.at_level(logging.WARNING, logger="ops.store.leases"):
        second = take_lease(registry, "dup", timeout_s=30)
    assert holder(registry, "dup").owner == second.owner
    assert any("taken over" in r.getMessage() for r in caplog.records)
    first.renew()  # the old holder comes back: its lease is gone, and it must not write
    with pytest.raises(LeaseError, match="taken over"):
        first.check()
    second.check()
    first.release()  # deletes nothing of the new holder's
    assert holder(registry, "dup").owner == second.owner


def test_a_renewed_lease_is_not_stale(registry) -> None:
    lease = take_lease(registry, "dup", timeout_s=30)
    _age(registry, "dup", 31)
    lease.renew()
    with pytest.raises(LeaseError, match="being trained by"):
        take_lease(registry, "dup", timeout_s=30)


def test_racing_takers_of_a_stale_lease_get_one_lease_between_them(registry) -> None:
    take_lease(registry, "dup", timeout_s=5)
    _age(registry, "dup", 60)
    won, refused = [], []
    start = threading.Barrier(4)

    def take() -> None:
        start.wait()
        try:
            won.append(take_lease(registry, "dup", timeout_s=5))
        except LeaseError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 3
    assert holder(registry, "dup").owner == won[0].owner


def test_the_renewing_thread_keeps_the_heartbeat_fresh(registry) -> None:
    lease = take_lease(registry, "dup", timeout_s=0.3).start_renewing()
    try:
        before = holder(registry, "dup").heartbeat_at
        threading.Event().wait(0.5)
        assert holder(registry, "dup").heartbeat_at > before
    finally:
        lease.release()
    assert holder(registry, "dup") is None
