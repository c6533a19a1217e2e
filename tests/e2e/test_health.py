"""Broker outages: the probe and watch, then every daemon against a paused and a lost broker.

Pausing the broker process (SIGSTOP) is the outage that TCP alone cannot see: the kernel
still accepts connections, nothing answers. The daemons must say so within seconds, wait,
and lose nothing when it answers again; a broker that never comes back ends each daemon
with one line after its --broker-timeout.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joiner_support import (
    assert_deduped_equal,
    command_labels,
    expected,
    join_outputs,
    synthetic_records,
)

from ops.store.snapshots import PublishedSnapshot
from ops.training.kafka_io import KafkaAnnouncer
from streaming.broker import EmbeddedBroker, free_port
from streaming.errors import BrokerError
from streaming.health import BrokerWatch, RepeatFilter, broker_answers
from streaming.joiner_app import JoinerConfig
from streaming.topics import create_topics

pytestmark = pytest.mark.broker


def wait_until(condition, timeout_s: float, what: str) -> float:
    """Seconds until condition() held; AssertionError naming `what` after timeout_s."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout_s}s")


def test_the_watch_sees_a_paused_broker_and_its_return(broker: EmbeddedBroker) -> None:
    assert broker_answers(broker.bootstrap)
    assert not broker_answers(f"127.0.0.1:{free_port()}")
    lines: list[str] = []
    watch = BrokerWatch(
        broker.bootstrap, timeout_s=3, every_s=0.5, probe_s=1, on_change=lines.append
    ).start()
    try:
        assert watch.up
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: not watch.up, 5, "the outage")
            assert "broker unreachable" in lines[0]
            wait_until(lambda: watch.expired, 6, "the timeout")
            with pytest.raises(BrokerError, match="has not answered for"):
                watch.raise_if_expired("test")
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        wait_until(lambda: watch.up, 5, "the return")
        assert "answers again" in lines[-1]
    finally:
        watch.close()


def test_a_snapshot_announced_with_the_broker_gone_ends_at_the_timeout(
    broker: EmbeddedBroker,
) -> None:
    create_topics(broker.bootstrap, {"snapshots": 1})
    watch = BrokerWatch(broker.bootstrap, timeout_s=3, every_s=0.5, probe_s=1).start()
    announcer = KafkaAnnouncer(broker.bootstrap, "snapshots", health=watch)
    snapshot = PublishedSnapshot(
        run="r", version=1, path="p", sha256="0", examples_seen=1, watermark=None, offsets={}
    )
    try:
        announcer.announce(snapshot)
        os.kill(broker.process.pid, signal.SIGKILL)
        gone = time.monotonic()
        with pytest.raises(BrokerError, match="has not answered for"):
            announcer.announce(dataclasses.replace(snapshot, version=2))
        assert time.monotonic() - gone < 3 + 5  # tries of 2 s while the watch allows
    finally:
        closing = time.monotonic()
        announcer.close()  # no error with the second announcement still pending
        watch.close()
    assert time.monotonic() - closing < 5


def _mmn(*argv: str, log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # noqa: SIM115 (the child owns it)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", *argv], stdout=handle, stderr=subprocess.STDOUT, env=env
    )


def _pipeline(broker: EmbeddedBroker, tmp_path: Path, replay_s: float, timeout: str) -> tuple:
    """`mmn join`, `mmn train` and `mmn replay` (paced over replay_s) on the broker."""
    records = synthetic_records(tmp_path / "log", clicks=4000, days=10)
    b, logs = broker.bootstrap, tmp_path / "out"
    logs.mkdir()
    common = ("--bootstrap", b, "--broker-timeout", timeout)
    join = _mmn(
        "join", *common, "--partitions", "2", "--until-end", "--timeout", "10m",
        "--progress-every", "1", "--log-dir", str(logs / "workers"), log=logs / "join.log",
    )  # fmt: skip
    wait_until(lambda: "worker(s) on" in (logs / "join.log").read_text(), 60, "the joiner")
    train = _mmn(
        "train", "--run", "outage", *common, "--db", f"sqlite:///{logs / 'registry.db'}",
        "--snapshot-dir", str(logs / "snapshots"), "--until-end", "--idle-timeout", "300",
        "--snapshot-every", "2000", "--min-train-examples", "0", "--buckets", "256", "--hidden", "16", "--threads", "1",
        "--progress-every", "1", log=logs / "train.log",
    )  # fmt: skip
    # The replay runs until the last delayed conversion, up to 30 days after the last click.
    last = max(r.conversion_ts or r.click_ts or r.ts for r in records)
    span = last - records[0].ts
    replay = _mmn(
        "replay", "--data", str(tmp_path / "log"), "--source", "synthetic", *common,
        "--partitions", "2", "--speed", str(span / replay_s), log=logs / "replay.log",
    )  # fmt: skip
    return records, {"join": join, "train": train, "replay": replay}, logs


def _stop_all(processes: dict) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_broker_paused_for_20s_is_reported_and_the_outputs_stay_exact(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    records, processes, logs = _pipeline(broker, tmp_path, replay_s=50, timeout="5m")
    try:
        training = re.compile(r"progress run=outage examples=[1-9]")
        wait_until(lambda: training.search((logs / "train.log").read_text()), 120, "training")
        assert all(p.poll() is None for p in processes.values())
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            for name in processes:  # each says so within 10 s
                wait_until(
                    lambda n=name: "broker unreachable" in (logs / f"{n}.log").read_text(),
                    10,
                    f"`mmn {name}` reporting the outage",
                )
            time.sleep(20 - 10)
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        for name, process in processes.items():
            assert process.wait(600) == 0, (logs / f"{name}.log").read_text()[-3000:]
    finally:
        _stop_all(processes)
    config = JoinerConfig(bootstrap=broker.bootstrap, partitions=2)
    examples, _, _ = join_outputs(broker.bootstrap, config)
    want = expected(records, command_labels())
    assert_deduped_equal(examples, want)
    assert f"{len(want)} examples seen" in (logs / "train.log").read_text()
    assert "broker=unreachable" in (logs / "train.log").read_text()  # in its progress line


@pytest.mark.slow
def test_every_daemon_exits_non_zero_within_its_broker_timeout_when_the_broker_is_gone(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    _, processes, logs = _pipeline(broker, tmp_path, replay_s=120, timeout="15s")
    try:
        wait_until(lambda: "progress run=" in (logs / "train.log").read_text(), 120, "training")
        assert all(p.poll() is None for p in processes.values())
        os.kill(broker.process.pid, signal.SIGKILL)
        gone = time.monotonic()
        for name, process in processes.items():
            code = process.wait(max(1.0, gone + 15 + 10 - time.monotonic()))
            text = (logs / f"{name}.log").read_text()
            assert code != 0, text[-2000:]
            assert "has not answered for" in text.splitlines()[-1], text[-2000:]
            assert "Traceback" not in text, text[-3000:]
    finally:
        _stop_all(processes)


def test_a_client_error_with_a_traceback_is_logged_on_one_line() -> None:
    try:
        raise ConnectionResetError(104, "Connection reset by peer")
    except ConnectionResetError:
        record = logging.LogRecord(
            "kafka.net", logging.ERROR, "f", 1, "Error receiving", None, sys.exc_info()
        )
    assert RepeatFilter().filter(record)
    text = logging.Formatter().format(record)
    assert text == "Error receiving: ConnectionResetError(104, 'Connection reset by peer')"
