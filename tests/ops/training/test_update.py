"""The update step: the seed's weights, a loss scaled by nominal rows, and its state (weights
and optimizer states) round trip."""

from __future__ import annotations

import pytest
import torch
from learner_rows import learner_config, make_rows

from ops.training.featurize import Featurize
from ops.training.update import ModelUpdate

CPU = torch.device("cpu")


def _step(update: ModelUpdate, start: int) -> float:
    batch = Featurize.fresh(learner_config()).batch(make_rows(start, 32))
    loss = update.loss(update.logits(batch), batch)
    update.zero_grad()
    loss.backward()
    update.step()
    return float(loss.detach())


def test_a_seed_gives_the_same_weights() -> None:
    a, b = (ModelUpdate(learner_config(seed=3), 0.1, "ctcvr", CPU) for _ in range(2))
    for x, y in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(x, y)


def test_a_step_smaller_than_nominal_rows_weighs_its_rows() -> None:
    full = ModelUpdate(learner_config(nominal_rows=1), 0.1, "ctcvr", CPU)
    small = ModelUpdate(learner_config(nominal_rows=128), 0.1, "ctcvr", CPU)
    assert _step(small, 0) == pytest.approx(_step(full, 0) * 32 / 128, rel=1e-6)


def test_its_state_round_trips_and_training_continues_exactly() -> None:
    config = learner_config(optimizer="adam", lr=0.01)
    update = ModelUpdate(config, 0.01, "ctcvr", CPU)
    _step(update, 0)
    restored = ModelUpdate(learner_config(optimizer="adam", lr=0.01, seed=9), 0.01, "ctcvr", CPU)
    restored.load_state(update.model.state_dict(), update.state())
    assert set(update.state()) == {"optimizer", "sparse_optimizer"}
    assert _step(update, 32) == _step(restored, 32)
    for a, b in zip(update.model.parameters(), restored.model.parameters(), strict=True):
        assert torch.equal(a, b)
