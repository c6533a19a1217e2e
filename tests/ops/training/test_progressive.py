"""Progressive validation: river running means, rolling exact AUC and ADWIN against direct computation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from learner_rows import ListSource, learner_config, make_rows

from ops.metrics import exact_auc, log_loss
from ops.store.database import list_snapshots, open_registry
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import OnlineLearner
from ops.training.progressive import ProgressiveValidation
from ops.training.trainer import Trainer, TrainerConfig

BATCH, BATCHES, WINDOW = 48, 12, 100


def test_metrics_equal_a_direct_computation_over_the_same_rows() -> None:
    rng = np.random.default_rng(1)
    pv = ProgressiveValidation(window=WINDOW)
    labels, p, types = [], [], []
    for _ in range(7):
        y = (rng.random(40) < 0.3).astype(int)
        q = np.clip(rng.beta(2, 5, 40) + 0.2 * y, 0.01, 0.99)
        t = [f"t{v}" for v in rng.integers(0, 3, 40)]
        pv.update(y, q, t, ["s"] * 40, 100)
        labels += y.tolist()
        p += q.tolist()
        types += t
    y, q, t = np.array(labels), np.array(p), np.array(types)
    got = pv.metrics()["domains"]
    for domain, mask in [("overall", np.ones(len(y), bool))] + [
        (f"type={v}", t == v) for v in ("t0", "t1", "t2")
    ]:
        assert got[domain]["n"] == mask.sum()
        assert got[domain]["log_loss"] == pytest.approx(log_loss(y[mask], q[mask]), abs=1e-9)
        last = np.flatnonzero(mask)[-WINDOW:]
        assert got[domain]["auc"] == pytest.approx(exact_auc(y[last], q[last]), abs=1e-12)


def test_adwin_marks_the_event_time_of_a_change_in_loss() -> None:
    rng = np.random.default_rng(2)
    pv = ProgressiveValidation()
    for step in range(60):
        y = (rng.random(200) < 0.1).astype(int)
        # From event time 3000 on the predictions turn bad: the loss jumps.
        q = np.where(y == 1, 0.6, 0.05) if step < 30 else np.where(y == 1, 0.05, 0.6)
        pv.update(y, q, ["t"] * 200, ["s"] * 200, 100 * step)
    points = pv.metrics()["drift_points"]
    assert points and all(t >= 3000 for t in points) and min(points) <= 3300


def test_the_trainers_figures_match_a_direct_computation_over_its_steps(tmp_path: Path) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    batches = [make_rows(b * BATCH, BATCH, seed=3) for b in range(BATCHES)]
    batches[-1] = dataclasses.replace(batches[-1], end=True)
    decoded = {str(b).encode(): rows for b, rows in enumerate(batches)}
    store = SnapshotStore(SnapshotStoreConfig(directory=tmp_path / "s"), Session, run="r",
                          model="mmn", run_config={})  # fmt: skip
    trainer = Trainer(
        TrainerConfig(run="r", snapshot_every_examples=None, until_end=True,
                      progress_every_s=0.0, validation_window=WINDOW, min_train_examples=0),
        new_learner=lambda: OnlineLearner(learner_config(min_step_rows=1)),
        store=store, source=ListSource({0: list(decoded)}), decode=decoded.__getitem__,
    )  # fmt: skip
    trainer.run()
    store.close()
    with Session() as session:
        stored = list_snapshots(session, "r")[-1].metrics
    # Direct: the same learner stepped by hand; the rows and predictions of each step's
    # forward pass (taken before the optimizer step), and the metrics computed from them.
    learner = OnlineLearner(learner_config(min_step_rows=1))
    labels, p, types = [], [], []
    for rows in batches:
        if learner.step(rows).trained:
            scored = learner.last_scored
            assert scored is not None
            labels += scored["conversion"].tolist()
            p += scored["p"].tolist()
            types += [learner.featurize.types.values[i] for i in scored["conv_type"]]
    y, q, t = np.array(labels), np.clip(np.array(p), 1e-7, 1 - 1e-7), np.array(types)
    for domain, mask in [("overall", np.ones(len(y), bool)), ("type=t1", t == "t1")]:
        figures = stored["domains"][domain]
        assert figures["n"] == mask.sum()
        assert figures["log_loss"] == pytest.approx(log_loss(y[mask], q[mask]), abs=1e-9)
        last = np.flatnonzero(mask)[-WINDOW:]
        assert figures["auc"] == pytest.approx(exact_auc(y[last], q[last]), abs=1e-9)


def test_the_auc_is_computed_when_the_figures_are_asked_for_not_per_update(monkeypatch) -> None:
    from ops.training import progressive

    calls: list[int] = []

    def counted(labels, p):
        calls.append(len(labels))
        return exact_auc(labels, p)

    monkeypatch.setattr(progressive, "exact_auc", counted)
    pv = ProgressiveValidation(window=WINDOW)
    rng = np.random.default_rng(0)
    for step in range(20):
        labels = rng.integers(0, 2, BATCH)
        pv.update(labels, rng.random(BATCH), ["t1"] * BATCH, ["s1"] * BATCH, step)
    assert calls == []
    first = pv.metrics()
    assert len(calls) == 3  # overall, type=t1, scenario=s1: once each
    assert pv.metrics() == first and len(calls) == 3  # nothing added since: kept
    pv.update(np.array([1, 0]), np.array([0.3, 0.6]), ["t2"] * 2, ["s1"] * 2, 21)
    again = pv.metrics()
    assert len(calls) == 6  # overall, scenario=s1 and the new type=t2; type=t1 kept
    assert again["domains"]["type=t1"] == first["domains"]["type=t1"]
    assert again["domains"]["overall"]["auc"] != first["domains"]["overall"]["auc"]
