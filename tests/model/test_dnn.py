"""Tests of the DNN baseline and the CVR-only loss it trains with."""

from __future__ import annotations

import torch

from model import zoo
from model.baselines.dnn import DNN
from model.baselines.single_task import clicked_cvr_loss
from model.batch import Batch
from model.config import ModelConfig

CONFIG = ModelConfig(n_fields=4, buckets=64, n_types=3, n_scenarios=2, hidden=(16, 8, 8, 4))


def batch(n: int = 12, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch.of(
        torch.randint(0, CONFIG.buckets, (n, CONFIG.n_fields), generator=g),
        torch.randint(0, CONFIG.n_types, (n,), generator=g),
        torch.randint(0, CONFIG.n_scenarios, (n,), generator=g),
        click=(torch.rand(n, generator=g) < 0.7).float(),
        conversion=torch.zeros(n),
    )


def test_logits_have_one_value_per_row_and_the_ctr_logit_is_the_same_for_all() -> None:
    torch.manual_seed(0)
    logits = DNN(CONFIG)(batch())
    assert logits.ctr.shape == logits.cvr.shape == (12,)
    assert torch.all(logits.ctr == logits.ctr[0])


def test_the_loss_ignores_the_cvr_logit_of_unclicked_rows() -> None:
    torch.manual_seed(0)
    b = batch()
    b = Batch.of(b.ids, b.conv_type, b.scenario, b.click, b.click * (b.ids[:, 0] % 2).float())
    logits = DNN(CONFIG)(b)
    cvr = logits.cvr.detach().requires_grad_(True)
    clicked_cvr_loss(logits._replace(cvr=cvr), b).backward()
    assert torch.all(cvr.grad[b.click == 0] == 0)
    assert torch.all(cvr.grad[b.click == 1] != 0)


def test_the_loss_honours_the_sample_weights() -> None:
    b = batch()
    logits = DNN(CONFIG)(b)
    doubled = Batch.of(
        b.ids, b.conv_type, b.scenario, b.click, b.conversion, 2 * b.weight, 2 * b.click_weight
    )
    assert torch.allclose(clicked_cvr_loss(logits, doubled), 2 * clicked_cvr_loss(logits, b))
    # The conversion weight scales the CVR term alone.
    cvr_only = Batch.of(b.ids, b.conv_type, b.scenario, b.click, b.conversion, 2 * b.weight)
    no_cvr = Batch.of(b.ids, b.conv_type, b.scenario, b.click, b.conversion, 0 * b.weight)
    ctr_term = clicked_cvr_loss(logits, no_cvr)
    assert torch.allclose(
        clicked_cvr_loss(logits, cvr_only), ctr_term + 2 * (clicked_cvr_loss(logits, b) - ctr_term)
    )


def test_the_click_rate_logit_learns_the_batch_click_rate_and_cvr_fits_the_labels() -> None:
    torch.manual_seed(0)
    b = batch(n=32)
    b = Batch.of(b.ids, b.conv_type, b.scenario, b.click, b.click * (b.ids[:, 1] % 2).float())
    spec = zoo.get("dnn")
    model = spec.build(CONFIG)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        spec.loss(model(b), b).backward()
        opt.step()
    logits = model(b)
    assert abs(torch.sigmoid(logits.ctr[0]).item() - b.click.mean().item()) < 0.02
    clicked = b.click == 1
    predicted = (logits.cvr[clicked] > 0).float()
    assert torch.equal(predicted, b.conversion[clicked])
    assert spec.param_sets(CONFIG) == 0 and spec.datasets(CONFIG) == 1
