"""An outage does not change the model: two trainers on one stream, one of them reading it live
while partition 1 falls silent behind a 30 s broker pause (SIGSTOP/SIGCONT of the embedded
broker), the other reading it whole afterwards, end with identical snapshots, tensor for tensor.

By default the trainer waits for a silent partition; with the old 5 s `--partition-wait` the
live trainer trained partition 0's rest before partition 1's, and the models differed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from kafka import KafkaProducer
from test_trainer_e2e import FIELDS, ROWS, _examples

from ops.store.database import get_run, latest_snapshot, open_registry
from ops.store.snapshot_chain import load_serving
from streaming.minibatch import MiniBatch, encode_minibatch
from streaming.topics import create_topics

pytestmark = [pytest.mark.broker, pytest.mark.slow]

BATCHES = 80  # alternate partitions 0 and 1; the second half of each is held back as below


def _batches() -> list[tuple[int, bytes]]:
    rng = np.random.default_rng(11)
    seqs, out = [0, 0], []
    for b in range(BATCHES):
        p = b % 2
        batch = MiniBatch.from_examples(
            _examples(b, rng), partition=p, seq=seqs[p], watermark=(b + 1) * ROWS, end=False
        )
        seqs[p] += 1
        out.append((p, encode_minibatch(batch)))
    for p in (0, 1):
        end = MiniBatch.from_examples(
            [], partition=p, seq=seqs[p], watermark=BATCHES * ROWS, end=True
        )
        out.append((p, encode_minibatch(end)))
    return out


def _send(bootstrap: str, messages: list[tuple[int, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for p, value in messages:
        producer.send("minibatches", value=value, partition=p)
    producer.flush()
    producer.close()


def _trainer(bootstrap: str, tmp_path: Path, run: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "ops.cli", "train", "--run", run, "--bootstrap", bootstrap,
        "--db", f"sqlite:///{tmp_path / 'registry.db'}", "--snapshot-dir", str(tmp_path / "s"),
        "--snapshot-every", str(8 * ROWS), "--min-train-examples", "0", "--until-end",
        "--fields", ",".join(FIELDS), "--buckets", "64", "--hidden", "16,8", "--n-types", "4",
        "--n-scenarios", "3", "--threads", "1", "--seed", "3", "--progress-every", "1",
    ]  # fmt: skip
    log = (tmp_path / f"{run}.log").open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def _tensors(value: Any, path: str = "") -> dict[str, torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return {path: value}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return {}
    out: dict[str, torch.Tensor] = {}
    for key, item in items:
        out.update(_tensors(item, f"{path}/{key}"))
    return out


def _final_tensors(Session, run: str) -> dict[str, torch.Tensor]:
    with Session() as session:
        snapshot = latest_snapshot(session, get_run(session, run))
        assert snapshot is not None
        version = snapshot.version
    return _tensors(load_serving(Session, run, version))  # a delta's chain applied


def test_a_paused_broker_does_not_change_the_model(broker, tmp_path: Path) -> None:
    create_topics(broker.bootstrap, {"minibatches": 2})
    messages = _batches()
    half = BATCHES // 2
    first, rest = messages[:half], messages[half:]
    _send(broker.bootstrap, first + [m for m in rest if m[0] == 0])  # partition 0 runs ahead
    live = _trainer(broker.bootstrap, tmp_path, "live")
    log = tmp_path / "live.log"
    deadline = time.monotonic() + 180
    while "waiting=p1/" not in log.read_text(errors="replace"):
        assert live.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)  # the outage: partition 1 stays silent
    time.sleep(30)
    broker.process.send_signal(signal.SIGCONT)
    _send(broker.bootstrap, [m for m in rest if m[0] == 1])
    assert live.wait(timeout=240) == 0, log.read_text()[-3000:]
    whole = _trainer(broker.bootstrap, tmp_path, "whole")
    assert whole.wait(timeout=240) == 0, (tmp_path / "whole.log").read_text()[-3000:]
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    a, b = _final_tensors(Session, "live"), _final_tensors(Session, "whole")
    assert a.keys() == b.keys() and a
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:10]
