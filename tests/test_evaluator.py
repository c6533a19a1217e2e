"""The evaluator with a list source and real snapshots: serving snapshot, final labels, restarts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from learner_rows import ListSource, learner_config, make_rows

from model.snapshot import restore
from model.vocab import OTHER
from ops.errors import EvaluationError
from ops.evaluation.evaluator import Evaluator, EvaluatorConfig
from ops.evaluation.serving import predict, tensor_batch
from ops.store.database import list_snapshots, open_registry
from ops.store.experiments import predictions
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig, load_snapshot
from ops.training.learner import OnlineLearner
from streaming.example import Example
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch

OBS, ATT = 50, 1000  # observation and attribution windows (event seconds)
N = 120  # clicks, one every 100 s
ARMS = (("control", "run-a"), ("treatment", "run-b"))


def decisions() -> list[Example]:
    """The joiner's decisions about N clicks, in label-time order (fake-negative policy)."""
    rng = np.random.default_rng(5)
    out = []
    for i in range(N):
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
        fate = rng.random()
        if fate < 0.15:
            out.append(Example(**common, label_ts=ts + 20, conversion=1, kind="positive"))
            continue
        out.append(Example(**common, label_ts=ts + OBS, conversion=0, kind="negative"))
        if fate < 0.35:
            out.append(Example(**common, label_ts=ts + 400, conversion=1, kind="delayed-positive"))
    return sorted(out, key=lambda e: (e.label_ts, e.impression_id))


def encoded_stream(size: int = 16) -> list[bytes]:
    """Mini-batches of `size` decisions with the joiner's watermark, then an end marker."""
    rows = decisions()
    out = []
    for seq, start in enumerate(range(0, len(rows), size)):
        chunk = rows[start : start + size]
        after = rows[start + size].label_ts if start + size < len(rows) else chunk[-1].label_ts + 1
        batch = MiniBatch.from_examples(chunk, partition=0, seq=seq, watermark=after, end=False)
        out.append(encode_minibatch(batch))
    end = MiniBatch.from_examples(
        [], partition=0, seq=len(out), watermark=rows[-1].label_ts + 1, end=True
    )
    return [*out, encode_minibatch(end)]


WATERMARKS = {"run-a": (1_000, 3_000, 6_000, 9_000), "run-b": (2_000, 5_000, 20_000)}


@pytest.fixture
def registry_with_snapshots(tmp_path: Path):
    """Two runs, each with snapshots at known watermarks (weights differ per version)."""
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    for seed, (run, marks) in enumerate(WATERMARKS.items()):
        store = SnapshotStore(
            SnapshotStoreConfig(directory=tmp_path / "snapshots"), Session, run=run, model="mmn",
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
    return Session


def config(**overrides) -> EvaluatorConfig:
    settings = dict(
        experiment="exp", arms=ARMS, shadow=True, until_end=True, observation_window_s=OBS,
        attribution_window_s=ATT, flush_rows=10, flush_every_event_s=1_500, snapshot_timeout_s=5,
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


def test_every_click_is_scored_by_its_serving_snapshot_never_a_newer_one(
    registry_with_snapshots,
) -> None:
    table = evaluate(registry_with_snapshots)
    with registry_with_snapshots() as session:
        marks = {
            run: {s.version: s.watermark for s in list_snapshots(session, run)}
            for run in WATERMARKS
        }
    runs = dict(ARMS)
    assert len(table["arm"]) == 2 * N  # shadow: each arm scores every click once
    for arm, ts, version in zip(table["arm"], table["ts"], table["snapshot_version"], strict=True):
        eligible = [v for v, w in marks[runs[arm]].items() if w <= ts]
        assert version == (max(eligible) if eligible else -1)
        if version >= 0:
            assert marks[runs[arm]][version] <= ts
    scored = ~np.isnan(table["prediction"])
    assert scored.sum() == sum(
        (np.arange(N) * 100 >= min(marks[run].values())).sum() for run in WATERMARKS
    )


def test_labels_are_final_not_the_fake_negatives(registry_with_snapshots) -> None:
    table = evaluate(registry_with_snapshots)
    final = {}
    for ex in decisions():
        final[ex.impression_id] = max(final.get(ex.impression_id, 0), ex.conversion)
    for impression, label in zip(table["impression_id"], table["label"], strict=True):
        assert label == final[impression]
    assert table["label"].sum() > 0


def test_scoring_is_read_only_and_maps_unseen_domains_to_other(registry_with_snapshots) -> None:
    with registry_with_snapshots() as session:
        snap = list_snapshots(session, "run-a")[-1]
    before = load_snapshot(snap.path, snap.sha256)
    table = evaluate(registry_with_snapshots)
    after = restore(load_snapshot(snap.path, snap.sha256))  # the file still verifies
    assert after.vocabs["conv_type"].values == restore(before).vocabs["conv_type"].values
    assert "t-new" not in after.vocabs["conv_type"].values
    row = next(
        i for i, (a, t, v) in enumerate(zip(table["arm"], table["conv_type"], table["snapshot_version"], strict=True))
        if a == "control" and t == "t-new" and v == snap.version
    )  # fmt: skip
    i = int(table["impression_id"][row])
    ex = next(e for e in decisions() if e.impression_id == str(i))
    features = {k: [v] for k, v in ex.features.items()}
    as_other = predict(after, tensor_batch(after, features, [OTHER], [ex.scenario]))
    assert table["prediction"][row] == as_other[0]


def test_same_rows_at_any_speed_and_after_a_crash(registry_with_snapshots, tmp_path) -> None:
    reference = evaluate(registry_with_snapshots, chunk=1)
    faster = evaluate(registry_with_snapshots, chunk=50, experiment="exp-fast")
    for column in reference:
        np.testing.assert_array_equal(faster[column], reference[column])
    Session = registry_with_snapshots
    data = {0: encoded_stream()}

    class Crash(Exception):
        pass

    class CrashingSource(ListSource):
        def __init__(self, *args, after: int, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.left = after

        def poll(self, timeout_s: float):
            self.left -= 1
            if self.left < 0:
                raise Crash
            return super().poll(timeout_s)

    cfg = config(experiment="exp-2")
    crashes = 0
    while True:  # crash after a few polls, restart from what was committed, until the end
        source = CrashingSource(data, chunk=1, after=3 + crashes)
        try:
            Evaluator(cfg, Session=Session, source=source, decode=decode_minibatch).run()
            break
        except Crash:
            crashes += 1
            assert crashes < 20, "the evaluator makes no progress across restarts"
    assert crashes >= 3
    with Session() as session:
        resumed = predictions(session, "exp-2")
    for column in reference:
        np.testing.assert_array_equal(resumed[column], reference[column])


def test_an_undetermined_serving_snapshot_is_waited_for_then_refused(tmp_path) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    with pytest.raises(EvaluationError, match="no serving snapshot is determined"):
        evaluate(Session, snapshot_timeout_s=0.3)
