"""The online learner: one step per mini-batch, dedupe, delayed-feedback weights, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from learner_rows import FIELDS, auc, learner_config, make_rows

from model.config import ModelConfig
from model.features import FeaturizerConfig
from model.snapshot import restore
from ops.errors import ConfigError
from ops.training.learner import LearnerConfig, OnlineLearner, fnw_weights
from streaming.events import OTHER_DOMAIN


@pytest.mark.parametrize("model", ["mmn", "esmm", "mmn_nodw"])
def test_one_step_per_minibatch_learns_the_signal(model: str) -> None:
    learner = OnlineLearner(learner_config(model=model, lr=0.1))
    for b in range(40):
        result = learner.step(make_rows(b * 128, 128))
        assert result.trained == 128 and result.dropped == 0
    assert learner.batches == 40 and learner.examples_seen == 40 * 128
    held_out = make_rows(10**6, 2000)
    with torch.no_grad():
        logits = learner.model(learner.batch(held_out))
    p = (torch.sigmoid(logits.ctr) * torch.sigmoid(logits.cvr)).numpy()
    assert auc(p, np.asarray(held_out.conversion)) > 0.75


def test_reemitted_examples_are_not_trained_twice() -> None:
    learner = OnlineLearner(learner_config())
    learner.step(make_rows(0, 64))
    before = [p.detach().clone() for p in learner.model.parameters()]
    result = learner.step(make_rows(0, 64))  # the joiner re-emits the same 64 decisions
    assert (result.trained, result.dropped) == (0, 64)
    assert learner.examples_seen == 64 and learner.batches == 1
    assert all(torch.equal(a, b) for a, b in zip(before, learner.model.parameters(), strict=True))


def test_fnw_weights_follow_ktena_et_al() -> None:
    p = torch.tensor([0.0, 0.1, 0.5, 0.9])
    positive = fnw_weights(p, torch.ones(4))
    negative = fnw_weights(p, torch.zeros(4))
    assert torch.allclose(positive, 1 + p)
    assert torch.allclose(negative, (1 - p) * (1 + p))
    # The importance weights turn the biased b = p / (1 + p) back into p:
    # b * w_pos / (b * w_pos + (1 - b) * w_neg) == p.
    b = p / (1 + p)
    assert torch.allclose(b * positive / (b * positive + (1 - b) * negative), p)


def test_fnw_changes_the_update_and_plain_does_not_weight() -> None:
    rows = make_rows(0, 256)
    plain, fnw, unweighted = (
        OnlineLearner(learner_config(delayed_feedback=policy))
        for policy in ("plain", "fnw", "plain")
    )
    result = plain.step(rows)
    fnw.step(rows)
    # The same step taken by hand with every row's weight 1: plain must match it exactly.
    batch = unweighted.batch(rows)
    assert torch.equal(batch.weight, torch.ones(len(batch)))
    loss = unweighted.spec.loss(unweighted.model(batch), batch)
    unweighted.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    unweighted.optimizer.step()
    assert result.loss == float(loss.detach())
    for a, b in zip(plain.model.parameters(), unweighted.model.parameters(), strict=True):
        assert torch.equal(a, b)
    differs = [
        not torch.allclose(a, b)
        for a, b in zip(plain.model.parameters(), fnw.model.parameters(), strict=True)
    ]
    assert any(differs)


def test_a_resumed_learner_continues_exactly_where_the_snapshot_was_taken() -> None:
    straight = OnlineLearner(learner_config())
    for b in range(6):
        straight.step(make_rows(b * 64, 64))

    first = OnlineLearner(learner_config())
    for b in range(3):
        first.step(make_rows(b * 64, 64))
    state = first.state(offsets={"0": 3})
    resumed = OnlineLearner.from_state(state)
    for b in range(3, 6):
        resumed.step(make_rows(b * 64, 64))

    assert resumed.examples_seen == straight.examples_seen == 384
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert state["extra"]["offsets"] == {"0": 3}
    assert restore(state).vocabs["conv_type"].values == first.types.values  # servable as is


def test_a_mismatched_featurizer_is_refused() -> None:
    with pytest.raises(ConfigError, match="n_fields is 4 but the featurizer has 3"):
        LearnerConfig(
            model_config=ModelConfig(n_fields=4, buckets=64, n_types=2, n_scenarios=2),
            featurizer=FeaturizerConfig(fields=FIELDS, buckets=64),
        )


def test_a_readers_other_shares_slot_0_of_the_vocabularies() -> None:
    rows = make_rows(0, 64)
    rows.conv_types = [OTHER_DOMAIN if i % 2 else "t0" for i in range(64)]
    learner = OnlineLearner(learner_config())
    learner.step(rows)
    assert learner.types.values == [OTHER_DOMAIN, "t0"]
    assert learner.types.index(OTHER_DOMAIN) == 0
