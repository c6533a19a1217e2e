"""`mmn train` as a subprocess against the embedded broker: SIGKILL three times, SIGTERM, resume.

Mini-batches are published directly with the joiner's encoding (streaming.minibatch),
including byte-identical copies of a few batches, as an at-least-once joiner re-emits them
after a restart. At the end the run has seen every distinct example exactly once, every
snapshot file verifies, and files and registry rows match one to one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ops.store.database import get_run, latest_snapshot, list_snapshots, open_registry
from ops.store.snapshot_chain import load_checkpoint
from ops.store.snapshot_files import load_snapshot
from ops.store.snapshots import PublishedSnapshot
from streaming.example import Example
from streaming.minibatch import MiniBatch, encode_minibatch
from streaming.topics import create_topics

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS = 2
BATCHES = 240
ROWS = 64
FIELDS = ("f0", "f1", "f2")
REEMITTED = range(25, BATCHES, 50)  # batches published twice, as a restarted joiner re-emits


def _examples(batch: int, rng: np.random.Generator) -> list[Example]:
    out = []
    for i in range(ROWS):
        n = batch * ROWS + i
        f0 = int(rng.integers(0, 10))
        converted = bool(rng.random() < (0.5 if f0 < 3 else 0.05))
        out.append(
            Example(
                impression_id=str(n),
                user_id=f"u{n % 97}",
                ts=n,
                label_ts=n + 10,
                click=1,
                conversion=int(converted),
                kind="positive" if converted else "negative",
                conv_type=f"t{rng.integers(0, 3)}",
                scenario=f"s{rng.integers(0, 2)}",
                features={"f0": str(f0), "f1": str(rng.integers(0, 10)), "f2": "x"},
            )
        )
    return out


def publish_stream(bootstrap: str) -> tuple[int, dict[int, int]]:
    """Publish the mini-batches; the number of distinct examples and messages per partition."""
    create_topics(bootstrap, {"minibatches": PARTITIONS})
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    rng = np.random.default_rng(7)
    seqs = dict.fromkeys(range(PARTITIONS), 0)
    messages = dict.fromkeys(range(PARTITIONS), 0)

    def send(partition: int, value: bytes) -> None:
        producer.send("minibatches", key=str(partition).encode(), value=value, partition=partition)
        messages[partition] += 1

    for b in range(BATCHES):
        p = b % PARTITIONS
        batch = MiniBatch.from_examples(
            _examples(b, rng), partition=p, seq=seqs[p], watermark=(b + 1) * ROWS, end=False
        )
        seqs[p] += 1
        value = encode_minibatch(batch)
        send(p, value)
        if b in REEMITTED:
            send(p, value)  # a re-emitted copy: must not be trained twice
    for p in range(PARTITIONS):
        end = MiniBatch.from_examples(
            [], partition=p, seq=seqs[p], watermark=BATCHES * ROWS, end=True
        )
        send(p, encode_minibatch(end))
    producer.flush()
    producer.close()
    return BATCHES * ROWS, messages


def start_trainer(bootstrap: str, tmp_path: Path, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "ops.cli",
        "train",
        "--run",
        "kill-test",
        "--bootstrap",
        bootstrap,
        "--db",
        f"sqlite:///{tmp_path / 'registry.db'}",
        "--snapshot-dir",
        str(tmp_path / "snapshots"),
        "--snapshot-every",
        str(4 * ROWS),
        "--min-train-examples",
        "0",
        "--until-end",
        "--idle-timeout",
        "120",
        "--fields",
        ",".join(FIELDS),
        "--buckets",
        "64",
        "--hidden",
        "64,32",
        "--n-types",
        "4",
        "--n-scenarios",
        "3",
        "--threads",
        "1",
        "--progress-every",
        "1",
    ]
    handle = open(log, "ab")  # noqa: SIM115 (the child owns it)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)


def wait_for(log: Path, text: str, count: int, process: subprocess.Popen, timeout_s: float) -> bool:
    """True once log holds text count times; False if the process ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count(text) >= count:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError(
        f"{text!r} x{count} not in the trainer log within {timeout_s}s:\n{log.read_text()[-3000:]}"
    )


def test_sigkill_three_times_then_sigterm_then_finish(broker, tmp_path: Path) -> None:
    total, messages = publish_stream(broker.bootstrap)
    log = tmp_path / "trainer.log"
    rng = random.Random(11)
    kills = 0
    for _ in range(3):
        process = start_trainer(broker.bootstrap, tmp_path, log)
        published = log.read_text(errors="replace").count("snapshot published")
        # At a random point after it has made progress: 1 to 3 more snapshots, plus a random delay.
        if wait_for(log, "snapshot published", published + rng.randint(1, 3), process, 120):
            time.sleep(rng.uniform(0.0, 0.4))
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait(30)
    assert kills == 3, log.read_text()[-3000:]

    process = start_trainer(broker.bootstrap, tmp_path, log)
    published = log.read_text(errors="replace").count("snapshot published")
    wait_for(log, "snapshot published", published + 1, process, 120)
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(60) == 0
    text = log.read_text(errors="replace")
    assert "reason=signal" in text or "reason=end-of-stream" in text

    process = start_trainer(broker.bootstrap, tmp_path, log)
    assert process.wait(300) == 0, log.read_text()[-3000:]
    text = log.read_text(errors="replace")
    assert "reason=end-of-stream" in text
    assert text.count("resumed run=kill-test") >= 4

    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    with Session() as session:
        run = get_run(session, "kill-test")
        latest = latest_snapshot(session, run)
        rows = list_snapshots(session, "kill-test")
    assert latest.examples_seen == total
    assert latest.offsets == {str(p): n for p, n in messages.items()}
    payload = load_checkpoint(Session, PublishedSnapshot.of("kill-test", latest))
    # Every row of every re-emitted copy was dropped, once: the persisted state is that of
    # one uninterrupted pass, whatever was re-read after the kills.
    assert payload["checkpoint"]["dedupe"]["dropped"] == len(REEMITTED) * ROWS
    for row in rows:
        serving = load_snapshot(row.path, row.sha256)  # every registered file verifies
        assert "checkpoint" not in serving and "optimizer" not in serving["extra"]
    # Checkpoints for the newest snapshots only (--keep-checkpoints), the latest's among them.
    checkpoints = [row.checkpoint_path for row in rows if row.checkpoint_path is not None]
    assert latest.checkpoint_path in checkpoints and len(checkpoints) <= 2
    folder = tmp_path / "snapshots" / "kill-test"
    on_disk = {str(p) for p in folder.iterdir() if p.name != ".lock"}
    assert on_disk == {row.path for row in rows} | set(checkpoints)
    versions = [row.version for row in rows]
    assert versions == sorted(set(versions))

    # Every snapshot the last trainer published was announced on the `snapshots` topic.
    announced = read_announcements(broker.bootstrap)
    assert announced[-1]["version"] == latest.version
    assert announced[-1]["sha256"] == latest.sha256
    by_version = {row.version: row.sha256 for row in rows}
    assert all(
        by_version.get(a["version"], a["sha256"]) == a["sha256"] for a in announced
    )  # an announced version that still exists is the same file


def read_announcements(bootstrap: str) -> list[dict]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = TopicPartition("snapshots", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out, quiet_since = [], time.monotonic()
    while time.monotonic() - quiet_since < 3:
        for records in consumer.poll(timeout_ms=500).values():
            out += [json.loads(r.value) for r in records]
            quiet_since = time.monotonic()
    consumer.close()
    return [a for a in out if a["run"] == "kill-test"]
