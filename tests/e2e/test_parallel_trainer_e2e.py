"""`mmn train --nproc 2` against the embedded broker on a 4-partition stream.

The run's last snapshot equals one process trained step by step on the union of the ranks'
mini-batches (each rank's in event-time order, paired step by step), to 1e-5; and a rank
SIGKILLed mid-run makes the group restart from the last snapshot and end at the same
model, every example trained exactly once (re-emitted copies dropped, once).

The runs use TensorFlow's Adagrad (`adagrad-tf`): PyTorch's starts its accumulator at 0,
so a coordinate's first step is lr * sign(g) whatever |g|, and a gradient that cancels to
~1e-9 takes a full step whose sign depends on the order of a float sum, which N ranks
take differently from one process (measured on this stream: 1e-5 apart after 3 steps,
1e-1 at the end; with adagrad-tf 1.5e-8 at the end).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.store.database import get_run, latest_snapshot, open_registry
from ops.store.snapshots import PublishedSnapshot, load_checkpoint
from ops.training.learner import LearnerConfig, OnlineLearner
from ops.training.merge import PartitionMerge
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch
from streaming.source import Message
from streaming.topics import create_topics
from tests.e2e.test_trainer_e2e import FIELDS, ROWS, _examples, wait_for
from tests.ops.training.test_data_parallel import union

pytestmark = [pytest.mark.broker, pytest.mark.slow]

PARTITIONS, WORLD = 4, 2
BATCHES = 96
REEMITTED = range(20, BATCHES, 30)  # published twice, as a restarted joiner re-emits
OPTIMIZER = "adagrad-tf"  # see the module docstring


def publish(bootstrap: str) -> dict[int, list[bytes]]:
    """The stream, partition by partition as published (uneven event times across partitions)."""
    create_topics(bootstrap, {"minibatches": PARTITIONS})
    rng = np.random.default_rng(3)
    values: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for b in range(BATCHES):
        p = int(rng.integers(0, PARTITIONS))
        batch = MiniBatch.from_examples(
            _examples(b, rng), partition=p, seq=len(values[p]), watermark=(b + 1) * ROWS, end=False
        )
        values[p].append(encode_minibatch(batch))
        if b in REEMITTED:
            values[p].append(values[p][-1])
    for p in range(PARTITIONS):
        end = MiniBatch.from_examples([], partition=p, seq=len(values[p]),
                                      watermark=BATCHES * ROWS, end=True)  # fmt: skip
        values[p].append(encode_minibatch(end))
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for p, messages in values.items():
        for value in messages:
            producer.send("minibatches", value=value, partition=p)
    producer.flush()
    producer.close()
    return values


def rank_order(values: dict[int, list[bytes]], rank: int) -> list:
    """A rank's mini-batches as its trainer releases them (rows, or None for one without)."""
    merge, expected = PartitionMerge(10**6), set()
    for p in range(rank, PARTITIONS, WORLD):
        expected.add(p)
        for offset, value in enumerate(values[p]):
            merge.push(Message(partition=p, offset=offset, value=value), decode_minibatch(value))
    out = []
    while (item := merge.pop(frozenset(expected), wait_for_all=True)) is not None:
        rows = item[1]
        out.append(rows if len(rows.impression_ids) else None)
        if rows.end:
            expected.discard(item[0].partition)
    return out


def reference(values: dict[int, list[bytes]]) -> OnlineLearner:
    """One process stepping on the union of the ranks' mini-batches, global step by step."""
    learner = OnlineLearner(
        LearnerConfig(
            model="mmn",
            model_config=ModelConfig(
                n_fields=3, buckets=64, n_types=4, n_scenarios=3, hidden=(64, 32)
            ),  # fmt: skip
            featurizer=FeaturizerConfig(fields=FIELDS, numeric_fields=(), buckets=64),
            min_step_rows=100,
            optimizer=OPTIMIZER,
        )
    )
    orders = [rank_order(values, r) for r in range(WORLD)]
    for t in range(max(map(len, orders))):
        parts = [o[t] if t < len(o) else None for o in orders]
        if any(p is not None for p in parts):
            learner.step(union(parts))
    return learner


def start(
    bootstrap: str, tmp_path: Path, run: str, log: Path, *, until_end: bool = True
) -> subprocess.Popen:
    command = [sys.executable, "-m", "ops.cli", "train", "--nproc", str(WORLD), "--run", run,
               "--model", "mmn", "--optimizer", OPTIMIZER, "--bootstrap", bootstrap,
               "--db", f"sqlite:///{tmp_path / 'registry.db'}",
               "--snapshot-dir", str(tmp_path / "snapshots"), "--snapshot-every", str(4 * ROWS),
               "--min-train-examples", "0", "--min-step-rows", "100", "--until-end",
               "--idle-timeout", "120", "--fields", ",".join(FIELDS), "--buckets", "64",
               "--hidden", "64,32", "--n-types", "4", "--n-scenarios", "3", "--threads", "1",
               "--progress-every", "1"]  # fmt: skip
    if not until_end:  # then it waits for more until --idle-timeout
        command.remove("--until-end")
    handle = open(log, "ab")  # noqa: SIM115 (the child owns it)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)


def final_state(tmp_path: Path, run: str) -> tuple[dict, PublishedSnapshot]:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    with Session() as session:
        published = PublishedSnapshot.of(run, latest_snapshot(session, get_run(session, run)))
    return load_checkpoint(Session, published), published


def check_against_reference(payload: dict, published: PublishedSnapshot, values) -> None:
    expected = reference(values)
    distinct = BATCHES * ROWS
    assert published.examples_seen == distinct == expected.examples_seen
    assert published.offsets == {str(p): len(v) for p, v in values.items()}
    assert payload["checkpoint"]["dedupe"]["dropped"] == len(REEMITTED) * ROWS
    assert payload["extra"]["examples_trained"] == expected.examples_trained
    for name, want in expected.model.state_dict().items():
        diff = (payload["state_dict"][name] - want).abs().max().item()
        assert diff <= 1e-5, (name, diff)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def test_two_ranks_end_where_one_process_on_the_union_ends(broker, tmp_path: Path) -> None:
    values = publish(broker.bootstrap)
    log = tmp_path / "train.log"
    process = start(broker.bootstrap, tmp_path, "together", log)
    assert process.wait(300) == 0, log.read_text()[-3000:]
    assert log.read_text().count("reason=end-of-stream") == WORLD
    check_against_reference(*final_state(tmp_path, "together"), values)


@pytest.mark.parametrize("victim", [0, 1], ids=["rank 0, the writer", "rank 1"])
def test_a_rank_sigkilled_mid_run_restarts_the_group_exactly(
    broker, tmp_path: Path, victim: int
) -> None:
    values = publish(broker.bootstrap)
    log = tmp_path / "train.log"
    process = start(broker.bootstrap, tmp_path, "killed", log)
    assert wait_for(log, "snapshot published", 3, process, 180), log.read_text()[-3000:]
    ranks = children(process.pid)
    assert len(ranks) == WORLD
    os.kill(ranks[victim], signal.SIGKILL)
    assert process.wait(300) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "restarting the group from the last snapshot" in text
    assert "resumed run=killed" in text
    check_against_reference(*final_state(tmp_path, "killed"), values)


def test_ranks_die_with_their_supervisor(broker, tmp_path: Path) -> None:
    publish(broker.bootstrap)
    log = tmp_path / "train.log"
    # Without --until-end the ranks would train on, waiting for more, for --idle-timeout.
    process = start(broker.bootstrap, tmp_path, "orphans", log, until_end=False)
    assert wait_for(log, "snapshot published", 1, process, 180), log.read_text()[-3000:]
    ranks = children(process.pid)
    assert len(ranks) == WORLD
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.1)
    # Reaped by init, or zombies until then: none may still be running.
    alive = [pid for pid in ranks if _running(pid)]
    assert not alive, alive


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
