"""`mmn join` supervising its workers: restarts, progress line, metrics, giving up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from joiner_support import (
    assert_deduped_equal,
    command_labels,
    expected,
    join_outputs,
    replay_injecting,
    replay_log,
    small_join_config,
    synthetic_records,
    wait_for_rows,
)

from simulator.kafka_publisher import KafkaPublisher
from streaming.broker import EmbeddedBroker, free_port
from streaming.events import Impression, encode_event
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers
from streaming.minibatch import decode_minibatch


def worker_pids(parent: int) -> list[int]:
    """The PIDs of a process's children (the joiner's workers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


def wait_for_line(process: subprocess.Popen, lines: list[str], text: str, timeout_s: float) -> str:
    """Read process's stdout into lines until one holds text; that line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        lines.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} not printed within {timeout_s}s:\n{''.join(lines)[-3000:]}")


@pytest.mark.broker
def test_join_exits_non_zero_naming_the_cause_when_no_restart_is_left(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    argv = [
        sys.executable, "-m", "ops.cli", "join", "--bootstrap", broker.bootstrap,
        "--partitions", "1", "--max-restarts", "1", "--log-dir", str(tmp_path),
    ]  # fmt: skip
    join = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        wait_for_line(join, lines, "worker(s) on", 60)
        for round_ in range(2):
            time.sleep(2)
            [pid] = worker_pids(join.pid)
            os.kill(pid, signal.SIGKILL)
            if round_ == 0:
                wait_for_line(join, lines, "killed by SIGKILL; restarted (1 of 1 restarts)", 30)
        assert join.wait(30) != 0
    finally:
        if join.poll() is None:
            join.kill()
            join.wait()
    err = join.stderr.read()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "joiner worker 0 was killed by SIGKILL; no restarts left" in err


@pytest.mark.slow
@pytest.mark.broker
def test_mmn_join_restarts_a_killed_worker_shows_progress_and_serves_metrics(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    records = synthetic_records(tmp_path / "log", clicks=20_000, days=10)
    port = free_port()
    argv = [
        sys.executable, "-m", "ops.cli", "join", "--bootstrap", broker.bootstrap,
        "--partitions", "2", "--until-end", "--timeout", "10m", "--progress-every", "1",
        "--metrics-port", str(port), "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    join = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        wait_for_line(join, lines, "worker(s) on", 60)
        replay_log(broker.bootstrap, records)
        config = JoinerConfig(bootstrap=broker.bootstrap, partitions=2)
        wait_for_rows(broker.bootstrap, config, 3000)
        [pid] = worker_pids(join.pid)
        os.kill(pid, signal.SIGKILL)
        wait_for_line(join, lines, "joiner worker 0 was killed by SIGKILL; restarted", 60)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"mmn_joiner_examples " in metrics and b"mmn_joiner_broker_up 1.0" in metrics
        wait_for_line(join, lines, "end of stream on all 2 partitions", 600)
        assert join.wait(60) == 0
    finally:
        if join.poll() is None:
            join.kill()
            join.wait()
    progress = [line for line in lines if line.startswith("progress rows=")]
    assert progress and "restarts=1 broker=ok" in progress[-1]
    assert "deadletters=" in progress[-1] and "watermark_p0=" in progress[-1]
    assert "events_in=" in progress[-1] and "ended=2/2" in progress[-1]
    examples, _, _ = join_outputs(broker.bootstrap, config)
    assert_deduped_equal(examples, expected(records, command_labels()))
    assert not any(b"\x1b" in p.read_bytes() for p in (tmp_path / "logs").glob("*.log"))


class RaisingWorkers(JoinerWorkers):
    """Workers whose agent raises once (tests/raising_worker.py)."""

    def worker_argv(self) -> list[str]:
        script = Path(__file__).parents[1] / "support" / "raising_worker.py"
        return [sys.executable, str(script), self.config.to_json()]


@pytest.mark.broker
def test_an_agent_that_raises_ends_its_worker_which_restarts_and_loses_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Issue 19, finding 1: an exception in the agent left a live worker with a dead agent
    (restarts=0, nothing more joined)."""
    config = small_join_config(broker.bootstrap)
    labels = config.labels
    records = synthetic_records(tmp_path / "log", clicks=5000, days=3)

    def boom(publisher: KafkaPublisher, ts: int) -> None:
        event = Impression(
            impression_id="boom", user_id="x", ts=ts, conv_type="t", scenario="s", features={}
        )
        publisher.send("impressions", encode_event(event), key=b"boom")

    logs = tmp_path / "logs"
    with RaisingWorkers(config, log_dir=logs).start(1) as workers:
        replay_injecting(broker.bootstrap, records, after=len(records) // 2, inject=boom)
        workers.wait_for_end(240)
    examples, letters, batches = join_outputs(broker.bootstrap, config)
    want = expected(records, labels) | {("boom", "non-click", 0)}
    assert_deduped_equal(examples, want)
    rows = {
        (i, k) for r in batches for b in [decode_minibatch(r.value)]
        for i, k in zip(b.impression_ids, b.kinds, strict=True)
    }  # fmt: skip
    assert rows == {(i, k) for i, k, _ in want}
    assert letters == []
    assert workers.restarts == 1
    log = (logs / "joiner-0.log").read_text()
    assert "injected fault at impression boom" in log and "exiting with code 70" in log
