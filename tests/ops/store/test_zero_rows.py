"""Checkpoints without their all-zero rows: a resume gets the optimizer state bit for bit."""

from __future__ import annotations

from pathlib import Path

import torch
from test_deltas import _config, _store, _train_and_publish

from ops.store.database import open_registry
from ops.store.snapshot_files import load_snapshot
from ops.store.zero_rows import MARK, pack, unpack
from ops.training.learner import OnlineLearner


def _flat(value, prefix=""):
    """(path, tensor) of every tensor in a nested payload."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, f"{prefix}/{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _flat(v, f"{prefix}/{i}")


def test_a_checkpoint_leaves_zero_rows_out_and_resumes_bit_for_bit(tmp_path: Path) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    store = _store(tmp_path / "snapshots", Session, "esmm")
    learner = OnlineLearner(_config("esmm", sparse=True))
    _train_and_publish(learner, store, 2)
    expected = learner.state()["checkpoint"]
    published, payload = store.load_latest()
    store.close()
    assert published.checkpoint_path is not None and published.checkpoint_sha256 is not None
    stored = load_snapshot(published.checkpoint_path, published.checkpoint_sha256)
    assert MARK in str(stored)  # the embedding tables' optimizer state, mostly untouched rows
    got, want = dict(_flat(payload["checkpoint"])), dict(_flat(expected))
    assert got.keys() == want.keys()
    for name, tensor in want.items():
        assert tensor.dtype == got[name].dtype and tensor.shape == got[name].shape, name
        assert torch.equal(tensor.view(-1).view(torch.uint8), got[name].view(-1).view(torch.uint8))


def test_negative_zero_rows_are_kept() -> None:
    """A row of -0.0 is not all-zero bytes: left out it would come back as +0.0."""
    tensor = torch.zeros(2048, 1)
    tensor[7] = -0.0
    packed = pack(tensor)
    assert packed["rows"].tolist() == [7]
    assert torch.equal(unpack(packed).view(torch.uint8), tensor.view(torch.uint8))
