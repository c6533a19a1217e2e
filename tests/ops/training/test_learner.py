"""The online learner: one step per mini-batch, dedupe, delayed-feedback weights, exact resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from learner_rows import FIELDS, learner_config, make_rows

from model.config import ModelConfig
from model.features import FeaturizerConfig
from model.snapshot import restore
from ops.errors import ConfigError
from ops.metrics import exact_auc
from ops.training.delayed.fnw import fnw_weights
from ops.training.learner import LearnerConfig, OnlineLearner
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
    assert exact_auc(np.asarray(held_out.conversion), p) > 0.75


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


def test_fnw_changes_the_update() -> None:
    rows = make_rows(0, 256)
    plain, fnw, unweighted = (
        OnlineLearner(learner_config(method=method, nominal_rows=1, sparse=False))
        for method in ("vanilla", "fnw", "vanilla")
    )
    result = plain.step(rows)
    fnw.step(rows)
    # The same step taken by hand with every row's weight 1: vanilla must match it exactly.
    batch = unweighted.batch(rows, grow=True)
    assert torch.equal(batch.weight, torch.ones(len(batch)))
    loss = unweighted.update.spec.loss(unweighted.model(batch), batch)
    unweighted.update.zero_grad()
    loss.backward()
    unweighted.update.step()
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
    assert (
        restore(state).vocabs["conv_type"].values == first.featurize.types.values
    )  # servable as is


def test_the_state_keeps_the_layout_snapshots_have_always_had() -> None:
    # Old snapshots and the registry's delta chains are read by these keys, in this order.
    learner = OnlineLearner(learner_config(method="es-dfm", min_step_rows=100))
    learner.step(make_rows(0, 40))
    state = learner.state(offsets={"0": 1})
    assert list(state) == [
        *("format", "version", "model", "config", "state_dict", "vocabs", "featurizer"),
        *("score", "extra", "checkpoint"),
    ]
    assert list(state["vocabs"]) == ["conv_type", "scenario"]
    assert list(state["extra"]) == [
        *("learner", "examples_seen", "examples_trained", "batches", "watermark", "offsets")
    ]
    checkpoint = state["checkpoint"]
    assert list(checkpoint) == ["optimizer", "sparse_optimizer", "aux", "dedupe", "pending"]
    assert list(checkpoint["aux"]) == ["model", "dense", "sparse"]
    assert (
        list(checkpoint["pending"]) == ["batch", "kinds"]
        and len(checkpoint["pending"]["kinds"]) == 40
    )


def test_a_mismatched_featurizer_is_refused() -> None:
    with pytest.raises(ConfigError, match="n_fields is 4 but the featurizer has 3"):
        LearnerConfig(
            model_config=ModelConfig(n_fields=4, buckets=64, n_types=2, n_scenarios=2),
            featurizer=FeaturizerConfig(fields=FIELDS, buckets=64),
        )


def test_a_snapshot_round_trip_keeps_the_esdfm_delay_model() -> None:
    straight = OnlineLearner(learner_config(method="es-dfm"))
    first = OnlineLearner(learner_config(method="es-dfm"))
    for learner in (straight, first):
        learner.step(make_rows(0, 64, kind="final"))  # the delay model learns from these
    resumed = OnlineLearner.from_state(first.state())
    assert resumed.weigh.aux is not None and first.weigh.aux is not None
    for a, b in zip(
        first.weigh.aux.model.parameters(), resumed.weigh.aux.model.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    for learner in (straight, resumed):
        learner.step(make_rows(64, 64))
        learner.step(make_rows(128, 64, kind="final"))
    for a, b in zip(
        straight.weigh.aux.model.parameters(), resumed.weigh.aux.model.parameters(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_small_minibatch_weighs_its_rows_not_a_full_batch() -> None:
    rows = make_rows(0, 5)
    learner = OnlineLearner(learner_config(method="vanilla", nominal_rows=1000))
    batch = learner.batch(rows, grow=True)
    with torch.no_grad():
        mean = learner.update.spec.loss(learner.model(batch), batch)
    assert learner.train_batch(batch) == pytest.approx(float(mean) * 5 / 1000, rel=1e-5)


def test_sparse_steps_match_dense_adagrad_and_touch_only_the_batch_rows() -> None:
    sparse = OnlineLearner(learner_config(lr=0.1))
    dense = OnlineLearner(learner_config(lr=0.1, sparse=False))
    table = sparse.model.embedding.table.weight
    before = table.detach().clone()
    for b in range(3):
        sparse.step(make_rows(b * 32, 32))
        dense.step(make_rows(b * 32, 32))
    for a, b in zip(sparse.model.parameters(), dense.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-4)  # summation order: float rounding only
    touched = (table.detach() != before).any(dim=1)
    assert 0 < int(touched.sum()) < len(before)  # only rows of the batches' ids moved


def test_scoring_never_changes_the_vocabularies() -> None:
    learner = OnlineLearner(learner_config())
    for b in range(3):
        learner.step(make_rows(b * 128, 128))
    vocabs = learner.featurize.state()
    unseen = make_rows(10**6, 50)
    unseen.conv_types = ["never-trained"] * 50
    batch = learner.batch(unseen)
    assert batch.conv_type.tolist() == [0] * 50  # "other"
    assert learner.featurize.state() == vocabs


def test_small_minibatches_are_gathered_into_one_step_and_a_resume_keeps_them() -> None:
    straight = OnlineLearner(learner_config(min_step_rows=100))
    results = [straight.step(make_rows(b * 40, 40)) for b in range(3)]
    assert [r.trained for r in results] == [0, 0, 120]
    assert straight.batches == 1 and straight.examples_seen == 120

    first = OnlineLearner(learner_config(min_step_rows=100))
    first.step(make_rows(0, 40))
    resumed = OnlineLearner.from_state(first.state())  # 40 rows gathered, not yet trained
    assert resumed.examples_seen == 40 and resumed.batches == 0
    for b in (1, 2):
        resumed.step(make_rows(b * 40, 40))
    assert resumed.batches == 1
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_end_of_the_stream_trains_what_is_gathered() -> None:
    learner = OnlineLearner(learner_config(min_step_rows=1000))
    learner.step(make_rows(0, 30))
    last = make_rows(30, 10)
    last.end = True
    assert learner.step(last).trained == 40 and learner.batches == 1


def test_a_readers_other_shares_slot_0_of_the_vocabularies() -> None:
    rows = make_rows(0, 256)  # t0 gets its slot after 100 rows (model.vocab.MIN_COUNT)
    rows.conv_types = [OTHER_DOMAIN if i % 2 else "t0" for i in range(256)]
    learner = OnlineLearner(learner_config())
    learner.step(rows)
    assert learner.featurize.types.values == [OTHER_DOMAIN, "t0"]
    assert learner.featurize.types.index(OTHER_DOMAIN) == 0


def test_reconfigure_lr_reaches_every_optimizer_through_restore_with() -> None:
    from ops.cli.train import restore_with

    config = learner_config(method="es-dfm", sparse=True, lr=0.01)
    learner = OnlineLearner(config)
    learner.step(make_rows(0, 64))
    assert len(learner.optimizers()) == 4  # dense, sparse embeddings, delay model's two
    restored = restore_with(dataclasses.replace(config, lr=0.5))(learner.state())
    rates = [g["lr"] for o in restored.optimizers() for g in o.param_groups]
    assert len(restored.optimizers()) == 4 and rates == [0.5] * len(rates)
    assert restored.config.lr == 0.5


def test_every_optimizer_is_the_configured_one_and_takes_the_new_rate_after_a_restore() -> None:
    from ops.cli.train import restore_with

    config = learner_config(method="defer", sparse=True, optimizer="adam", lr=0.01)
    learner = OnlineLearner(config)
    learner.step(make_rows(0, 64, kind="final"))  # final rows teach the delay model too
    restored = restore_with(dataclasses.replace(config, lr=0.2))(learner.state())
    assert restored.weigh.aux is not None
    optimizers = restored.optimizers()
    # The main model's dense and sparse, then the delay model's: --optimizer reaches all.
    assert sorted(type(o).__name__ for o in optimizers) == ["Adam", "Adam"] + ["SparseAdam"] * 2
    for optimizer in optimizers:
        assert [g["lr"] for g in optimizer.param_groups] == [0.2]
    # The restored states are the trained ones (a step was taken), not fresh ones.
    assert all(optimizer.state for optimizer in optimizers)
    # The new rate is the one the next step uses: an Adam step moves a weight by about lr.
    before = restored.weigh.aux.model.mlp.net[0].weight.detach().clone()
    restored.step(make_rows(64, 64, kind="final"))
    moved = (restored.weigh.aux.model.mlp.net[0].weight - before).abs().max().item()
    assert 0.05 < moved <= 0.2 + 1e-6
