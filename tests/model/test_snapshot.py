"""Model snapshots: one weights_only file, identical predictions after loading, bad files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import zoo
from model.batch import Batch
from model.config import ModelConfig
from model.errors import SnapshotError
from model.features import FeaturizerConfig
from model.snapshot import load_model, save_model, snapshot_state
from model.vocab import DomainVocab

CONFIG = ModelConfig(n_fields=3, buckets=40, n_types=3, n_scenarios=2, hidden=(8, 4))


def _trained_mmn() -> torch.nn.Module:
    torch.manual_seed(0)
    model = zoo.get("mmn").build(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.2)
    return model


def _batch() -> Batch:
    g = torch.Generator().manual_seed(5)
    return Batch.of(
        torch.randint(0, 40, (9, 3), generator=g),
        torch.randint(0, 3, (9,), generator=g),
        torch.randint(0, 2, (9,), generator=g),
    )


def test_round_trip_restores_identical_predictions_and_everything_that_travels(
    tmp_path: Path,
) -> None:
    model = _trained_mmn()
    vocabs = {
        "conv_type": DomainVocab(3, ["buy", "sign"], other="other"),
        "scenario": DomainVocab(2, ["feed"], other="rest"),
    }
    featurizer = FeaturizerConfig(fields=("a", "b", "c"), numeric_fields=("a",), buckets=40)
    path = tmp_path / "snap" / "mmn.pt"
    extra = {"watermark": 1234, "offsets": {"0": 17}, "note": "x"}
    save_model(
        path, model, name="mmn", config=CONFIG, vocabs=vocabs, featurizer=featurizer, extra=extra
    )

    raw = torch.load(path, weights_only=True)
    assert raw["model"] == "mmn" and raw["vocabs"]["conv_type"]["values"][1] == "buy"

    loaded = load_model(path)
    assert loaded.name == "mmn" and loaded.config == CONFIG
    assert loaded.vocabs["conv_type"].values == vocabs["conv_type"].values
    assert loaded.vocabs["scenario"].other == "rest"
    assert loaded.featurizer == featurizer and loaded.extra == extra
    batch = _batch()
    with torch.no_grad():
        before, after = model(batch), loaded.model(batch)
    assert torch.equal(before.cvr, after.cvr) and torch.equal(before.ctr, after.ctr)
    assert not list(path.parent.glob("*.tmp"))


def test_a_snapshot_holds_copies_not_live_weights() -> None:
    model = _trained_mmn()
    state = snapshot_state(model, name="mmn", config=CONFIG)
    with torch.no_grad():
        model.embedding.table.weight.add_(1.0)
    assert not torch.equal(
        state["state_dict"]["embedding.table.weight"], model.embedding.table.weight
    )


def test_missing_corrupt_and_foreign_files_raise_snapshot_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no snapshot"):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(SnapshotError, match="cannot be read"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "foreign.pt")
    with pytest.raises(SnapshotError, match="not a mmn-stream/model"):
        load_model(tmp_path / "foreign.pt")


def test_weights_that_do_not_fit_the_config_raise_snapshot_error(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    save_model(path, _trained_mmn(), name="mmn", config=CONFIG)
    state = torch.load(path, weights_only=True)
    state["config"]["hidden"] = [16, 4]
    torch.save(state, path)
    with pytest.raises(SnapshotError, match="does not restore"):
        load_model(path)


def test_the_literal_reference_shares_mmn_parameters(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    model = _trained_mmn()
    save_model(path, model, name="mmn", config=CONFIG)
    state = torch.load(path, weights_only=True)
    state["model"] = "mmn_masked"
    torch.save(state, path)
    masked = load_model(path).model
    batch = _batch()
    with torch.no_grad():
        assert torch.allclose(masked(batch).cvr, model(batch).cvr, atol=1e-5)
