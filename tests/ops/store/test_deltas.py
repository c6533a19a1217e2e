"""Delta snapshots: every version loads through its chain equal to the trainer's weights, and
a broken chain fails loudly (issue 20, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from learner_rows import FIELDS, make_rows
from sqlalchemy import update

from model import zoo
from model.config import ModelConfig
from model.features import FeaturizerConfig
from model.snapshot import restore
from ops.errors import SnapshotCorruptError, SnapshotStoreError
from ops.evaluation.serving import ModelCache, ServingIndex
from ops.store.database import Snapshot, list_snapshots, open_registry
from ops.store.snapshot_chain import load_serving
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import LearnerConfig, OnlineLearner

BUCKETS = 2048  # tables large enough that a batch's touched rows cost less than a table


def _config(name: str, sparse: bool) -> LearnerConfig:
    return LearnerConfig(
        model=name,
        model_config=ModelConfig(
            n_fields=len(FIELDS), buckets=BUCKETS, n_types=4, n_scenarios=3, hidden=(8, 8, 8)
        ),
        featurizer=FeaturizerConfig(fields=FIELDS, numeric_fields=(), buckets=BUCKETS),
        min_step_rows=1,
        sparse=sparse,
    )


def _store(folder: Path, Session, name: str, chain: int = 3) -> SnapshotStore:
    config = SnapshotStoreConfig(directory=folder, keep_snapshots=None, delta_chain_max=chain)
    return SnapshotStore(config, Session, run="r", model=name, run_config={})


def _train_and_publish(
    learner: OnlineLearner, store: SnapshotStore, versions: int, first: int = 0
) -> dict[int, dict[str, torch.Tensor]]:
    """Publish after each short training interval; the trainer's weights at each version."""
    weights = {}
    for k in range(first, first + versions):
        learner.step(make_rows(k * 16, 16, seed=k))
        published = store.publish(
            learner.state(), examples_seen=learner.examples_seen, watermark=k, offsets={}
        )
        weights[published.version] = {n: t.clone() for n, t in learner.model.state_dict().items()}
    return weights


def _assert_loads_equal(Session, weights: dict[int, dict[str, torch.Tensor]]) -> None:
    for version, expected in weights.items():
        loaded = load_serving(Session, "r", version)["state_dict"]
        assert loaded.keys() == expected.keys()
        different = [n for n in expected if not torch.equal(loaded[n], expected[n])]
        assert not different, f"v{version}: {different}"
        model = restore(load_serving(Session, "r", version)).model.state_dict()
        assert all(torch.equal(model[n], expected[n]) for n in expected)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("name", zoo.names())
def test_every_version_loads_through_its_chain_equal_to_the_trainer(
    tmp_path: Path, name: str, sparse: bool
) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    learner = OnlineLearner(_config(name, sparse))
    store = _store(tmp_path / "snapshots", Session, name)
    weights = _train_and_publish(learner, store, 9)
    store.close()
    with Session() as session:
        parents = [r.parent_version for r in list_snapshots(session, "r")]
    # Deltas after each full one, a full one again at the chain cap (3) at the latest.
    assert parents[0] is None and any(p is not None for p in parents)
    assert max(_chain_lengths(parents)) <= 3 and parents.count(None) >= 3
    _assert_loads_equal(Session, weights)
    # Loaded newest first, then in order, through the evaluator's cache of resolved states.
    index = ServingIndex(Session, ["r"])
    index.refresh()
    models = ModelCache(size=2, links=index.links)
    for known in [*reversed(index.known["r"]), *index.known["r"]]:
        state = models.get("r", known).model.state_dict()
        assert all(torch.equal(state[n], weights[known.version][n]) for n in state)


def _chain_lengths(parents: list[int | None]) -> list[int]:
    lengths: list[int] = []
    for parent in parents:
        lengths.append(0 if parent is None else lengths[parent - 1] + 1)
    return lengths


def test_a_delta_stores_only_the_rows_and_tensors_that_changed(tmp_path: Path) -> None:
    """An interval that touches one conversion type changes no other type's tower set."""
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    learner = OnlineLearner(_config("mmn", sparse=True))
    store = _store(tmp_path / "snapshots", Session, "mmn")
    learner.step(make_rows(0, 64, seed=1))
    store.publish(learner.state(), examples_seen=64, watermark=1, offsets={})
    before = {n: t.clone() for n, t in learner.model.state_dict().items()}
    rows = make_rows(64, 16, seed=2)
    rows.conv_types = ["t1"] * 16
    learner.step(rows)
    published = store.publish(learner.state(), examples_seen=80, watermark=2, offsets={})
    store.close()
    assert published.parent_version == 1
    stored = torch.load(published.path, weights_only=True)["delta"]["tensors"]
    after = learner.model.state_dict()
    for name, change in stored.items():
        if "rows" in change:
            changed = (before[name] != after[name]).reshape(len(after[name]), -1).any(dim=1)
            assert change["rows"].tolist() == changed.nonzero().flatten().tolist()
    assert not {n for n in after if torch.equal(before[n], after[n])} & set(stored)
    type_rows = [c["rows"] for n, c in stored.items() if "type" in n and "rows" in c]
    assert type_rows and all(len(r) == 1 for r in type_rows)  # t1's tower set only


def test_a_resumed_trainer_continues_the_chain(tmp_path: Path) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    store = _store(tmp_path / "snapshots", Session, "mmn", chain=8)
    weights = _train_and_publish(OnlineLearner(_config("mmn", True)), store, 3)
    store.close()
    store = _store(tmp_path / "snapshots", Session, "mmn", chain=8)
    loaded = store.load_latest()
    assert loaded is not None
    learner = OnlineLearner.from_state(loaded[1])
    weights |= _train_and_publish(learner, store, 2, first=3)
    store.close()
    with Session() as session:
        assert [r.parent_version for r in list_snapshots(session, "r")] == [None, 1, 2, 3, 4]
    _assert_loads_equal(Session, weights)


@pytest.fixture
def chain(tmp_path: Path):
    """A run of five versions: v1 full, v2 .. v5 deltas, each of the previous."""
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    store = _store(tmp_path / "snapshots", Session, "mmn", chain=8)
    _train_and_publish(OnlineLearner(_config("mmn", True)), store, 5)
    with Session() as session:
        rows = list_snapshots(session, "r")
    assert [r.parent_version for r in rows] == [None, 1, 2, 3, 4]
    return Session, store, rows


def test_a_corrupt_link_is_refused_naming_it(chain) -> None:
    Session, store, rows = chain
    data = bytearray(Path(rows[2].path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(rows[2].path).write_bytes(bytes(data))
    for version in (3, 4, 5):
        with pytest.raises(SnapshotCorruptError, match=f"{rows[2].path} is corrupt"):
            load_serving(Session, "r", version)
    load_serving(Session, "r", 2)  # before the corrupt link: loads
    store.close()


def test_a_missing_link_file_or_row_is_refused(chain) -> None:
    Session, store, rows = chain
    Path(rows[1].path).unlink()
    with pytest.raises(SnapshotStoreError, match=f"cannot read snapshot {rows[1].path}"):
        load_serving(Session, "r", 4)
    with Session.begin() as session:
        session.delete(session.get(Snapshot, rows[2].id))
    with pytest.raises(SnapshotStoreError, match="v3 of run 'r', a link of v5's chain, is not"):
        load_serving(Session, "r", 5)
    store.close()


def test_a_delta_registered_against_another_parent_is_refused(chain) -> None:
    Session, store, rows = chain
    with Session.begin() as session:
        session.execute(update(Snapshot).where(Snapshot.id == rows[3].id).values(parent_version=2))
    with pytest.raises(SnapshotCorruptError, match="is a delta of v3 .*not of the registered v2"):
        load_serving(Session, "r", 5)
    store.close()


def test_reconcile_drops_the_deltas_that_lost_a_link(chain) -> None:
    Session, store, rows = chain
    store.close()
    Path(rows[2].path).unlink()
    store = _store(Path(rows[0].path).parent.parent, Session, "mmn")
    removed = store.reconcile()
    assert removed.rows_removed == (3, 4, 5)
    with Session() as session:
        assert [r.version for r in list_snapshots(session, "r")] == [1, 2]
    load_serving(Session, "r", 2)
    store.close()
