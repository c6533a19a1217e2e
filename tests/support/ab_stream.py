"""A small A/B stream for the evaluator and report tests: decisions, mini-batches, two runs' snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from learner_rows import ListSource, learner_config, make_rows

from ops.evaluation.evaluator import Evaluator
from ops.evaluation.experiment import EvaluatorConfig
from ops.store.experiments import predictions
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import OnlineLearner
from streaming.example import Example
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch

OBS, ATT = 50, 1000  # observation and attribution windows (event seconds)
N = 120  # clicks, one every 100 s
ARMS = (("control", "run-a"), ("treatment", "run-b"))


def decisions(n: int = N) -> list[Example]:
    """The joiner's decisions about n clicks, in label-time order (fake-negative policy).

    Conversion is likelier when f0 < 3 (a model can learn it); a third of the conversions
    come after the observation window, as delayed positives after a fake negative.
    """
    rng = np.random.default_rng(5)
    out = []
    for i in range(n):
        ts = 100 * i
        common = dict(
            impression_id=str(i),
            user_id=f"u{i % 37}",
            ts=ts,
            click=1,
            conv_type="t-new" if i % 10 == 0 else f"t{i % 3}",  # t-new: never in a vocabulary
            scenario=f"s{i % 2}",
            features={"f0": str(i % 10), "f1": str(rng.integers(10)), "f2": "1"},
        )
        fate = rng.random() * (0.5 if i % 10 < 3 else 2.0)
        if fate < 0.15:
            out.append(Example(**common, label_ts=ts + 20, conversion=1, kind="positive"))
            continue
        out.append(Example(**common, label_ts=ts + OBS, conversion=0, kind="negative"))
        if fate < 0.35:
            out.append(Example(**common, label_ts=ts + 400, conversion=1, kind="delayed-positive"))
    return sorted(out, key=lambda e: (e.label_ts, e.impression_id))


def encoded_stream(size: int = 16, n: int = N) -> list[bytes]:
    """Mini-batches of `size` decisions with the joiner's watermark, then an end marker."""
    rows = decisions(n)
    out = []
    for seq, start in enumerate(range(0, len(rows), size)):
        chunk = rows[start : start + size]
        after = rows[start + size].label_ts if start + size < len(rows) else chunk[-1].label_ts + 1
        batch = MiniBatch.from_examples(chunk, partition=0, seq=seq, watermark=after, end=False,
                                        label_windows=(OBS, ATT))  # fmt: skip
        out.append(encode_minibatch(batch))
    end = MiniBatch.from_examples(
        [], partition=0, seq=len(out), watermark=rows[-1].label_ts + 1, end=True,
        label_windows=(OBS, ATT),
    )  # fmt: skip
    return [*out, encode_minibatch(end)]


WATERMARKS = {"run-a": (1_000, 3_000, 6_000, 9_000), "run-b": (2_000, 5_000, 20_000)}


def publish_snapshots(Session, directory: Path) -> None:
    """Two runs, each with snapshots at known watermarks (weights differ per version)."""
    for seed, (run, marks) in enumerate(WATERMARKS.items()):
        store = SnapshotStore(
            SnapshotStoreConfig(directory=directory), Session, run=run, model="mmn",
            run_config={},
        )  # fmt: skip
        learner = OnlineLearner(learner_config(seed=seed))
        for k, mark in enumerate(marks):
            learner.step(make_rows(k * 64, 64, seed=seed))
            # The last snapshot has read the whole stream (its end marker included).
            read = len(encoded_stream()) if k == len(marks) - 1 else 1 + k
            store.publish(learner.state(), examples_seen=learner.examples_seen, watermark=mark,
                          offsets={"0": read})  # fmt: skip
        store.close()


def config(**overrides) -> EvaluatorConfig:
    settings = dict(
        experiment="exp", arms=ARMS, shadow=True, until_end=True, flush_rows=10, flush_every_event_s=1_500, snapshot_timeout_s=5,
        progress_every_s=60, salt="same-users-in-every-experiment",
    )  # fmt: skip
    return EvaluatorConfig(**{**settings, **overrides})


def evaluate(Session, *, chunk: int = 3, **overrides) -> dict:
    """Run an evaluator over the whole stream, polling `chunk` messages at a time; its rows."""
    cfg = config(**overrides)
    source = ListSource({0: encoded_stream()}, chunk=chunk)
    evaluator = Evaluator(cfg, Session=Session, source=source, decode=decode_minibatch)
    assert evaluator.run().reason == "end-of-stream"
    with Session() as session:
        return predictions(session, cfg.experiment)
