"""ESMM and MMN losses: dynamic weights, numerical stability, sample weights."""

from __future__ import annotations

import dataclasses

import torch

from model.batch import Batch, Logits
from model.losses import ctcvr_log_loss, domain_weights, esmm_loss, mmn_loss


def _batch() -> Batch:
    # Domains: (0,0) x3, (1,0) x1, (0,2) x2 -> N = 6.
    return Batch.of(
        torch.zeros(6, 2, dtype=torch.long),
        torch.tensor([0, 0, 1, 0, 0, 0]),
        torch.tensor([0, 0, 0, 2, 2, 0]),
        click=torch.tensor([1.0, 1, 1, 0, 1, 1]),
        conversion=torch.tensor([1.0, 0, 1, 0, 0, 0]),
    )


LOGITS = Logits(
    ctr=torch.tensor([0.3, -1.0, 2.0, 0.5, -0.2, 1.1]),
    cvr=torch.tensor([-0.5, 0.4, 1.5, -2.0, 0.0, 0.7]),
)


def test_dynamic_weights_equal_a_hand_computed_batch() -> None:
    batch = _batch()
    assert domain_weights(batch.conv_type, batch.scenario).tolist() == [2, 2, 6, 3, 3, 2]


def test_mmn_ctcvr_term_averages_each_domain_over_its_own_rows() -> None:
    batch = _batch()
    rows = ctcvr_log_loss(LOGITS, batch)
    per_domain = rows[[0, 1, 5]].mean() + rows[2] + rows[[3, 4]].mean()  # Eq. 3, first line
    ctr = esmm_loss(LOGITS, batch, alpha=0.0)
    assert torch.allclose(mmn_loss(LOGITS, batch, alpha=0.5), ctr + 0.5 * per_domain)
    assert torch.allclose(esmm_loss(LOGITS, batch, alpha=0.5), ctr + 0.5 * rows.mean())


def test_ctcvr_loss_matches_the_probability_formula() -> None:
    batch = _batch()
    p = torch.sigmoid(LOGITS.ctr) * torch.sigmoid(LOGITS.cvr)
    label = batch.click * batch.conversion
    naive = -(label * p.log() + (1 - label) * (1 - p).log())
    assert torch.allclose(ctcvr_log_loss(LOGITS, batch), naive, atol=1e-6)


def test_extreme_logits_give_finite_losses_and_gradients() -> None:
    batch = _batch()
    ctr = torch.tensor([120.0, -120, 60, 120, -60, 0], requires_grad=True)
    cvr = torch.tensor([120.0, 120, -120, -60, 120, 0], requires_grad=True)
    loss = mmn_loss(Logits(ctr, cvr), batch)
    loss.backward()
    assert (
        torch.isfinite(loss) and torch.isfinite(ctr.grad).all() and torch.isfinite(cvr.grad).all()
    )


def test_sample_weights_multiply_each_row() -> None:
    batch = _batch()
    doubled = Batch.of(
        batch.ids,
        batch.conv_type,
        batch.scenario,
        batch.click,
        batch.conversion,
        torch.full((6,), 2.0),
        torch.full((6,), 2.0),
    )
    assert torch.allclose(mmn_loss(LOGITS, doubled), 2 * mmn_loss(LOGITS, batch))
    # The conversion weight leaves the click term alone, and the click weight the other.
    conversion_only = dataclasses.replace(doubled, click_weight=torch.ones(6))
    ctr_term = esmm_loss(LOGITS, batch, alpha=0.0)
    assert torch.allclose(
        mmn_loss(LOGITS, conversion_only), ctr_term + 2 * (mmn_loss(LOGITS, batch) - ctr_term)
    )
    zeroed = torch.ones(6)
    zeroed[2] = 0.0
    partial = Batch.of(
        batch.ids, batch.conv_type, batch.scenario, batch.click, batch.conversion, zeroed
    )
    rows = ctcvr_log_loss(LOGITS, batch)
    without_row_2 = esmm_loss(LOGITS, partial, alpha=0.0) + (
        rows[[0, 1, 5]].mean() + rows[[3, 4]].mean()
    )
    assert torch.allclose(mmn_loss(LOGITS, partial), without_row_2)
