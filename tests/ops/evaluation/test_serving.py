"""Serving: which snapshot serves an impression, and loading the snapshots of several runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from learner_rows import FIELDS, make_rows

from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.evaluation import serving
from ops.evaluation.serving import Known, ModelCache, ServingIndex
from ops.store.database import open_registry
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import LearnerConfig, OnlineLearner


def test_the_serving_version_is_the_newest_whose_watermark_is_not_after_the_impression() -> None:
    index = ServingIndex(None, ["r"])  # type: ignore[arg-type]  # no registry read here
    index.known["r"] = [Known(1, None, {}, "", ""), Known(2, 100, {}, "", ""),
                        Known(3, 100, {}, "", ""), Known(4, 250, {}, "", "")]  # fmt: skip
    assert index.serving("r", np.array([0, 99, 100, 249, 250, 10**9])).tolist() == [
        -1, -1, 3, 3, 4, 4
    ]  # fmt: skip
    assert index.serving("r", np.array([], dtype=np.int64)).tolist() == []
    index.known["r"] = [Known(1, None, {}, "", "")]
    assert index.serving("r", np.array([5])).tolist() == [-1]


def _publish_chain(Session, folder: Path, run: str, versions: int) -> None:
    config = LearnerConfig(
        model="mmn",
        model_config=ModelConfig(n_fields=len(FIELDS), buckets=2048, n_types=4, n_scenarios=3,
                                 hidden=(8, 8, 8)),
        featurizer=FeaturizerConfig(fields=FIELDS, numeric_fields=(), buckets=2048),
        min_step_rows=1,
    )  # fmt: skip
    learner = OnlineLearner(config)
    store = SnapshotStore(
        SnapshotStoreConfig(directory=folder, keep_snapshots=None, delta_chain_max=32),
        Session, run=run, model="mmn", run_config={},
    )  # fmt: skip
    for k in range(versions):
        learner.step(make_rows(k * 16, 16, seed=k))
        store.publish(learner.state(), examples_seen=learner.examples_seen, watermark=k,
                      offsets={})  # fmt: skip
    store.close()


def test_two_runs_loaded_in_turn_read_each_snapshot_file_once(tmp_path: Path, monkeypatch) -> None:
    """Scoring walks the versions of each arm in turn: each file is read once, not its whole
    delta chain again for every version (an evaluator of two arms read each file 9 times)."""
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    for run in ("a", "b"):
        _publish_chain(Session, tmp_path / run, run, versions=6)
    index = ServingIndex(Session, ["a", "b"])
    index.refresh()
    assert any(k.parent is not None for k in index.known["a"])  # deltas, not full files only
    reads: list[str] = []
    read_link = serving.read_link
    monkeypatch.setattr(
        serving, "read_link", lambda link: reads.append(link.path) or read_link(link)
    )
    assert [k.parent for k in index.known["a"]] == [None, 1, 2, 3, 4, 5]
    cache = ModelCache(size=4, links=index.links)
    # The evaluator starts once v4 exists: the first load walks v4's chain from v1.
    for version in range(4, 7):
        for run in ("a", "b"):
            cache.get(run, index.known[run][version - 1])
    assert len(reads) == len(set(reads)) == 12
