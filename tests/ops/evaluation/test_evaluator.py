"""The evaluator with a list source and real snapshots: serving snapshot, final labels, restarts."""

from __future__ import annotations

import numpy as np
import pytest
from ab_stream import ARMS, WATERMARKS, N, config, decisions, encoded_stream, evaluate
from learner_rows import ListSource

from model.snapshot import restore
from ops.errors import EvaluationError
from ops.evaluation import evaluator as evaluator_module
from ops.evaluation.evaluator import Evaluator
from ops.evaluation.serving import predict, tensor_batch
from ops.store.database import list_snapshots, open_registry
from ops.store.experiments import predictions
from ops.store.snapshot_chain import load_serving
from streaming.minibatch import decode_minibatch


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
    before = load_serving(registry_with_snapshots, "run-a", snap.version)
    table = evaluate(registry_with_snapshots)
    after = restore(load_serving(registry_with_snapshots, "run-a", snap.version))  # verifies
    assert after.vocabs["conv_type"].values == restore(before).vocabs["conv_type"].values
    assert "t-new" not in after.vocabs["conv_type"].values
    row = next(
        i for i, (a, t, v) in enumerate(zip(table["arm"], table["conv_type"], table["snapshot_version"], strict=True))
        if a == "control" and t == "t-new" and v == snap.version
    )  # fmt: skip
    i = int(table["impression_id"][row])
    ex = next(e for e in decisions() if e.impression_id == str(i))
    features = {k: [v] for k, v in ex.features.items()}
    other = after.vocabs["conv_type"].other
    as_other = predict(after, tensor_batch(after, features, [other], [ex.scenario]))
    assert table["prediction"][row] == as_other[0]


@pytest.mark.parametrize("group", [1, 3, evaluator_module.SCORE_BATCHES])
def test_same_rows_at_any_speed_and_after_a_crash(
    registry_with_snapshots, tmp_path, monkeypatch, group: int
) -> None:
    # Sealed batches scored `group` at a time: the groups, and so the floats, must not
    # depend on how the messages arrive or where a crash fell.
    monkeypatch.setattr(evaluator_module, "SCORE_BATCHES", group)
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


def test_the_low_water_mark_never_passes_a_click_written_later(
    registry_with_snapshots, monkeypatch
) -> None:
    """What retention keeps for a running experiment: every row written after a commit has an
    impression time at or after the low-water mark that commit recorded."""
    monkeypatch.setattr(evaluator_module, "SCORE_BATCHES", 1)  # a commit per sealed batch
    commits: list[tuple[int | None, list[int]]] = []
    real = evaluator_module.commit_results

    def recording(session, experiment, rows, **kwargs):
        commits.append((kwargs.get("low_water"), [row["ts"] for row in rows]))
        real(session, experiment, rows, **kwargs)

    monkeypatch.setattr(evaluator_module, "commit_results", recording)
    evaluate(registry_with_snapshots, chunk=1)
    marks = [mark for mark, _ in commits if mark is not None]
    assert len(marks) >= 3 and marks == sorted(marks) and marks[-1] > marks[0]
    for k, (mark, _) in enumerate(commits):
        later = [ts for _, written in commits[k + 1 :] for ts in written]
        assert mark is None or all(ts >= mark for ts in later), (k, mark, min(later))
