"""Tests of the MT-FwFM baseline: per-type field-pair weights, linear vectors and biases."""

from __future__ import annotations

import torch
from small_batches import CONFIG, batch

from model import zoo
from model.baselines.mtfwfm import MTFwFM
from model.baselines.single_task import clicked_cvr_loss
from model.batch import Batch


def randomised(model: MTFwFM) -> MTFwFM:
    with torch.no_grad():
        for p in (model.bias, model.linear, model.pair_weights):
            p.normal_()
        model.embed.table.weight.normal_()
    return model


def test_the_cvr_logit_is_the_per_type_field_weighted_fm() -> None:
    torch.manual_seed(0)
    model = randomised(MTFwFM(CONFIG))
    b = batch()
    logits = model(b)
    assert logits.ctr.shape == logits.cvr.shape == (12,)
    f, e = CONFIG.n_fields, CONFIG.embed_dim
    emb = model.embed.fields(b.ids)  # (B, F, E)
    for row, t in enumerate(b.conv_type.tolist()):
        w = model.linear[t].view(f, e)
        expected = model.bias[t] + (w * emb[row]).sum()
        pair = 0
        for i in range(f):
            for j in range(i + 1, f):
                expected = expected + model.pair_weights[t, pair] * (emb[row, i] @ emb[row, j])
                pair += 1
        torch.testing.assert_close(logits.cvr[row], expected)


def test_a_types_rows_touch_only_that_types_weights() -> None:
    torch.manual_seed(0)
    model = randomised(MTFwFM(CONFIG))
    model(batch(conv_type=1)).cvr.sum().backward()
    for p in (model.bias, model.linear, model.pair_weights):
        assert p.grad[[0, 2]].abs().sum() == 0 and p.grad[1].abs().sum() > 0


def test_the_scenario_does_not_enter_except_as_a_feature() -> None:
    model = randomised(MTFwFM(CONFIG))
    b = batch()
    rescened = Batch.of(b.ids, b.conv_type, 1 - b.scenario)
    assert torch.equal(model(b).cvr, model(rescened).cvr)


def test_the_spec_counts_one_set_per_type_and_trains_on_clicked_rows() -> None:
    spec = zoo.get("mtfwfm")
    assert spec.loss is clicked_cvr_loss
    assert spec.param_sets(CONFIG) == CONFIG.n_types and spec.datasets(CONFIG) == 1
