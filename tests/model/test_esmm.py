"""Tests of the ESMM baseline: two towers over shared embeddings, trained by the ESMM loss."""

from __future__ import annotations

import torch

from model import zoo
from model.baselines.esmm import ESMM
from model.batch import Batch
from model.config import ModelConfig
from model.losses import esmm_loss

CONFIG = ModelConfig(n_fields=4, buckets=64, n_types=3, n_scenarios=2, hidden=(16, 8, 8, 4))


def batch(n: int = 16, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, CONFIG.buckets, (n, CONFIG.n_fields), generator=g)
    click = (ids[:, 0] % 2).float()
    return Batch.of(
        ids,
        torch.randint(0, CONFIG.n_types, (n,), generator=g),
        torch.randint(0, CONFIG.n_scenarios, (n,), generator=g),
        click=click,
        conversion=click * (ids[:, 1] % 2).float(),
    )


def test_logits_have_one_value_per_row() -> None:
    logits = ESMM(CONFIG)(batch())
    assert logits.ctr.shape == logits.cvr.shape == (16,)


def test_the_towers_are_separate_and_share_the_embeddings() -> None:
    torch.manual_seed(0)
    model = ESMM(CONFIG)
    model(batch()).cvr.sum().backward()
    assert all(p.grad is None for p in model.ctr.parameters())
    assert all(p.grad is not None for p in model.cvr.parameters())
    assert model.embed.table.weight.grad.abs().sum() > 0


def test_the_registered_spec_trains_with_the_esmm_loss_and_fits_both_labels() -> None:
    torch.manual_seed(0)
    spec = zoo.get("esmm")
    assert spec.loss is esmm_loss
    assert spec.param_sets(CONFIG) == 0 and spec.datasets(CONFIG) == 1
    b = batch()
    model = spec.build(CONFIG)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        spec.loss(model(b), b).backward()
        opt.step()
    logits = model(b)
    assert torch.equal((logits.ctr > 0).float(), b.click)
    p_ctcvr = torch.sigmoid(logits.ctr) * torch.sigmoid(logits.cvr)
    assert torch.equal((p_ctcvr > 0.5).float(), b.click * b.conversion)
