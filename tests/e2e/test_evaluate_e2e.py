"""`mmn evaluate` against the embedded broker next to two `mmn train` runs, as subprocesses.

One partition of mini-batches (the joiner's encoding, delayed positives after fake
negatives) is published at two speeds, each time to a fresh topic with two fresh trainers
and a fresh registry: the exported predictions (so every figure of the report) are
byte-identical. A third time the evaluator is SIGKILLed twice mid-stream and restarted: it
ends with the same export.
"""

from __future__ import annotations

import csv
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ab_stream import decisions, encoded_stream
from kafka import KafkaProducer

from model.snapshot import restore
from ops.evaluation.report import load_report
from ops.evaluation.serving import tensor_batch
from ops.store.database import open_registry
from ops.store.snapshot_chain import load_serving
from streaming.topics import create_topics

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CLICKS = 3_000
TRAIN = ["--fields", "f0,f1,f2", "--buckets", "64", "--hidden", "16", "--n-types", "5",
         "--n-scenarios", "3", "--threads", "1", "--snapshot-every-event-time", "20000",
         "--snapshot-every", "1000000000", "--min-train-examples", "0", "--until-end", "--idle-timeout", "300",
         "--progress-every", "2"]  # fmt: skip


def publish(bootstrap: str, topic: str, pause_s: float) -> threading.Thread:
    """Publish the stream to topic in the background, pause_s between mini-batches."""
    create_topics(bootstrap, {topic: 1})

    def send() -> None:
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
        for value in encoded_stream(size=64, n=CLICKS):
            producer.send(topic, key=b"0", value=value, partition=0)
            if pause_s:
                producer.flush()
                time.sleep(pause_s)
        producer.flush()
        producer.close()

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def mmn(args: list[str], log: Path) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 (the child owns it)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ops.cli", *args], stdout=handle,
                            stderr=subprocess.STDOUT, env=env)  # fmt: skip


def pipeline(bootstrap: str, folder: Path, topic: str, pause_s: float, kills: int = 0) -> bytes:
    """Two trainers and the evaluator on one stream; the exported predictions' bytes."""
    folder.mkdir()
    db = f"sqlite:///{folder / 'registry.db'}"
    open_registry(db)  # migrated once, before three processes start on it
    export = folder / "predictions.csv"
    command = ["evaluate", "--experiment", "exp", "--arm", "control=esmm-a", "--arm",
               "treatment=mmn-a", "--shadow", "--window", "1d", "--bootstrap", bootstrap,
               "--topic", topic, "--db", db, "--until-end", "--flush-rows", "256",
               "--snapshot-timeout", "240", "--progress-every", "1", "--wait-for-runs", "240",
               "--export-predictions", str(export)]  # fmt: skip
    log = folder / "evaluate.log"
    # The experiment is registered before the trainers start, so their snapshot retention
    # keeps every snapshot its clicks may still need.
    create_topics(bootstrap, {topic: 1})
    evaluator = mmn(command, log)
    deadline = time.monotonic() + 120
    while "evaluator started" not in log.read_text(errors="replace"):
        assert evaluator.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    sender = publish(bootstrap, topic, pause_s)
    trainers = [
        mmn(["train", "--run", run, "--model", model, "--seed", seed, "--bootstrap", bootstrap, "--topic", topic,
             "--db", db, "--snapshot-dir", str(folder / "snapshots"), *TRAIN], folder / f"{run}.log")
        for run, model, seed in (("esmm-a", "esmm", "1"), ("mmn-a", "mmn", "2"))
    ]  # fmt: skip
    for k in range(kills):
        if k:
            evaluator = mmn(command, log)
        deadline = time.monotonic() + 240
        # One write more per kill: the evaluator writes SCORE_BATCHES sealed batches at a
        # time, three writes for this stream.
        while log.read_text(errors="replace").count("batch written") < k + 1:
            assert evaluator.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        os.kill(evaluator.pid, signal.SIGKILL)
        evaluator.wait(30)
    if kills:
        evaluator = mmn(command, log)
    assert evaluator.wait(400) == 0, log.read_text()[-3000:]
    for trainer in trainers:
        assert trainer.wait(120) == 0
    sender.join(60)
    if kills:
        assert log.read_text().count("evaluator started") == kills + 1
    report = load_report(open_registry(db), "exp")
    assert report["finished"] and report["arms"]["treatment"]["overall"]["n"] > 0
    return export.read_bytes()


def test_same_report_at_two_speeds_and_after_sigkill(broker, tmp_path: Path) -> None:
    slow = pipeline(broker.bootstrap, tmp_path / "slow", "mb-slow", pause_s=0.05)
    fast = pipeline(broker.bootstrap, tmp_path / "fast", "mb-fast", pause_s=0.0)
    assert slow == fast
    killed = pipeline(broker.bootstrap, tmp_path / "killed", "mb-killed", pause_s=0.01, kills=2)
    assert killed == fast
    assert slow.count(b"\n") > CLICKS  # header + both arms' scored clicks


def test_a_click_only_run_is_scored_by_its_p_cvr_end_to_end(broker, tmp_path: Path) -> None:
    """The evaluator scores a --click-only run by p_cvr, as it was trained, not by p_ctr *
    p_cvr (its CTR tower is never trained: multiplying by it only rescales the score)."""
    bootstrap, topic, folder = broker.bootstrap, "mb-click-only", tmp_path
    db = f"sqlite:///{folder / 'registry.db'}"
    Session = open_registry(db)
    export = folder / "predictions.csv"
    create_topics(bootstrap, {topic: 1})
    publish(bootstrap, topic, 0.0).join(60)
    trainer = mmn(["train", "--run", "clicks", "--model", "esmm", "--click-only", "--bootstrap",
                   bootstrap, "--topic", topic, "--db", db, "--snapshot-dir",
                   str(folder / "snapshots"), "--keep-snapshots", "1000", *TRAIN],
                  folder / "train.log")  # fmt: skip
    assert trainer.wait(300) == 0, (folder / "train.log").read_text()[-3000:]
    evaluator = mmn(["evaluate", "--experiment", "co", "--arm", "a=clicks", "--control", "a", "--bootstrap",
                     bootstrap, "--topic", topic, "--db", db, "--until-end",
                     "--snapshot-timeout", "60", "--export-predictions", str(export)],
                    folder / "evaluate.log")  # fmt: skip
    assert evaluator.wait(300) == 0, (folder / "evaluate.log").read_text()[-3000:]
    rows = {e.impression_id: e for e in decisions(CLICKS)}
    exported = list(csv.DictReader(export.open()))
    assert len(exported) > CLICKS // 2
    checked = 0
    for version, grouped in itertools.groupby(
        sorted(exported, key=lambda r: int(r["snapshot_version"])),
        key=lambda r: int(r["snapshot_version"]),
    ):
        group = list(grouped)
        loaded = restore(load_serving(Session, "clicks", version))
        assert loaded.score == "cvr"
        examples = [rows[r["impression_id"]] for r in group]
        batch = tensor_batch(
            loaded,
            {f: [e.features[f] for e in examples] for f in ("f0", "f1", "f2")},
            [e.conv_type for e in examples],
            [e.scenario for e in examples],
        )
        with torch.no_grad():
            logits = loaded.model(batch)
        p_cvr = torch.sigmoid(logits.cvr).double().numpy()
        p_ctcvr = (torch.sigmoid(logits.ctr) * torch.sigmoid(logits.cvr)).double().numpy()
        got = np.array([float(r["prediction"]) for r in group])
        np.testing.assert_allclose(got, p_cvr, rtol=1e-6)
        assert np.abs(got - p_ctcvr).max() > 1e-3  # the untrained CTR tower would move it
        checked += len(examples)
    assert checked == len(exported)
