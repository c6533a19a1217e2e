"""Run leases in the registry: one writer per run, stale holders taken over, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from ops.errors import LeaseError
from ops.store.database import RunLease, open_registry
from ops.store.leases import holder, take_lease
from streaming.topics import create_topics


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


def test_a_lease_whose_process_is_gone_on_this_host_is_taken_over_at_once(registry, caplog) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: a SIGKILLed trainer's
    take_lease(registry, "dup", timeout_s=60)
    with registry.begin() as session:
        session.execute(update(RunLease).where(RunLease.run == "dup").values(pid=dead.pid))
    with caplog.at_level(logging.WARNING, logger="ops.store.leases"):
        fresh = take_lease(registry, "dup", timeout_s=60)  # well within the timeout
    assert holder(registry, "dup").owner == fresh.owner
    assert any("its process is gone" in r.getMessage() for r in caplog.records)


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


def _train(bootstrap: str, tmp_path, folder: str, log) -> list[str]:
    return [
        sys.executable, "-m", "ops.cli", "train", "--run", "dup", "--bootstrap", bootstrap,
        "--db", f"sqlite:///{tmp_path / 'registry.db'}", "--snapshot-dir", str(tmp_path / folder),
        "--lease-timeout", "2s", "--idle-timeout", "120", "--threads", "1",
    ]  # fmt: skip


def _wait_for_holder(Session, pid: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        current = holder(Session, "dup")
        if current is not None and current.pid == pid:
            return
        time.sleep(0.2)
    raise AssertionError(f"trainer {pid} never took the lease (exit {process.poll()})")


@pytest.mark.broker
def test_a_second_trainer_of_a_run_is_refused_whatever_its_folder(broker, tmp_path) -> None:
    create_topics(broker.bootstrap, {"minibatches": 2})
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    log = (tmp_path / "a.log").open("wb")
    first = subprocess.Popen(_train(broker.bootstrap, tmp_path, "sA", log), stderr=log)
    try:
        _wait_for_holder(Session, first.pid, first)
        second = subprocess.run(
            _train(broker.bootstrap, tmp_path, "sB", log),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        last = second.stderr.strip().splitlines()[-1]
        assert f"is being trained by pid {first.pid} on {socket.gethostname()} since" in last
        assert not (tmp_path / "sB" / "dup").exists()  # refused before touching its folder
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
        assert holder(Session, "dup") is None  # released on a clean stop
    finally:
        if first.poll() is None:
            first.kill()


@pytest.mark.broker
def test_a_killed_trainers_lease_is_taken_over_after_the_timeout(broker, tmp_path) -> None:
    create_topics(broker.bootstrap, {"minibatches": 2})
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    log = (tmp_path / "a.log").open("wb")
    first = subprocess.Popen(_train(broker.bootstrap, tmp_path, "sA", log), stderr=log)
    _wait_for_holder(Session, first.pid, first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    time.sleep(3)  # past --lease-timeout 2s without a heartbeat
    second_log = tmp_path / "b.log"
    with second_log.open("wb") as out:
        second = subprocess.Popen(_train(broker.bootstrap, tmp_path, "sB", log), stderr=out)
        try:
            _wait_for_holder(Session, second.pid, second)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
        finally:
            if second.poll() is None:
                second.kill()
    text = second_log.read_text()
    assert f"taken over from pid {first.pid}" in text, text
