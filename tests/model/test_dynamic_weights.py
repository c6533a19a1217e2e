"""The dynamic-weight variants against hand-computed batches; `mmn` stays the literal Eq. 3."""

from __future__ import annotations

import math

import pytest
import torch

from model import zoo
from model.batch import Batch, Logits
from model.dynamic_weights import (
    axis_weights,
    clipped_weights,
    normalised_weights,
    tempered_weights,
)
from model.losses import mmn_loss

# Domains (type, scenario): (0,2) x2, (1,2), (0,1): N / N_c = 2, 2, 4, 4.
TYPES = torch.tensor([0, 0, 1, 0])
SCENS = torch.tensor([2, 2, 2, 1])
CTR = [0.3, -1.0, 2.0, 0.0]
CVR = [-0.5, 1.5, 0.2, -2.0]
CLICK = [1.0, 1.0, 0.0, 1.0]
CONV = [1.0, 0.0, 0.0, 1.0]
# Delayed-feedback weights as FNW / ES-DFM set them: the CTCVR term's sample weight and the
# CTR term's click weight differ (0 for a copy of a click already counted).
WEIGHT = [1.7, 0.6, 1.0, 2.5]
CLICK_WEIGHT = [1.0, 0.0, 1.0, 0.5]
ONES = [1.0, 1.0, 1.0, 1.0]


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _hand_loss(
    weights: list[float], sample: list[float] = ONES, clicks: list[float] = ONES
) -> float:
    """mean(click weight * CTR log loss) + mean(sample weight * w * CTCVR log loss), row by row."""
    ctr, ctcvr = 0.0, 0.0
    rows = zip(CTR, CVR, CLICK, CONV, weights, sample, clicks, strict=True)
    for a, b, y, z, w, s, c in rows:
        p = _sig(a)
        ctr -= c * (y * math.log(p) + (1 - y) * math.log(1 - p))
        q = p * _sig(b)
        ctcvr -= s * w * (y * z * math.log(q) + (1 - y * z) * math.log(1 - q))
    return (ctr + ctcvr) / 4


def _batch(sample: list[float] = ONES, clicks: list[float] = ONES) -> tuple[Logits, Batch]:
    batch = Batch.of(
        torch.zeros(4, 1, dtype=torch.long), TYPES, SCENS,
        click=torch.tensor(CLICK), conversion=torch.tensor(CONV),
        weight=torch.tensor(sample), click_weight=torch.tensor(clicks),
    )  # fmt: skip
    return Logits(torch.tensor(CTR), torch.tensor(CVR)), batch


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("mmn", [2.0, 2.0, 4.0, 4.0]),  # Eq. 3: N / N_c
        ("mmn_dw_norm", [2 / 3, 2 / 3, 4 / 3, 4 / 3]),  # divided by the mean weight 3
        ("mmn_dw_temp", [2**0.5, 2**0.5, 2.0, 2.0]),  # beta 0.5
        ("mmn_dw_clip", [0.4, 0.4, 0.4, 0.4]),  # N / max(N_c, 10): all N_c < 10 here
        ("mmn_dw_axes", [4 / 3, 4 / 3, 8 / 3, 8 / 3]),  # (N/N_t + N/N_s) / 2
        ("mmn_nodw", [1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_registered_loss_equals_the_hand_computation(name: str, weights: list[float]) -> None:
    logits, batch = _batch()
    got = zoo.get(name).loss(logits, batch).item()
    assert got == pytest.approx(_hand_loss(weights), rel=1e-5)
    # With delayed-feedback weights: the CTR term by click_weight, the CTCVR term by weight.
    logits, batch = _batch(WEIGHT, CLICK_WEIGHT)
    got = zoo.get(name).loss(logits, batch).item()
    assert got == pytest.approx(_hand_loss(weights, WEIGHT, CLICK_WEIGHT), rel=1e-5)
    assert got != pytest.approx(_hand_loss(weights, WEIGHT, WEIGHT), rel=1e-3)


def test_mmn_is_the_literal_eq3() -> None:
    assert zoo.get("mmn").loss is mmn_loss


def test_weight_functions_on_a_hand_batch() -> None:
    assert normalised_weights(TYPES, SCENS).mean().item() == pytest.approx(1.0)
    assert tempered_weights(TYPES, SCENS, 1.0).tolist() == [2.0, 2.0, 4.0, 4.0]
    assert clipped_weights(TYPES, SCENS, 1).tolist() == [2.0, 2.0, 4.0, 4.0]
    assert clipped_weights(TYPES, SCENS, 2).tolist() == [2.0, 2.0, 2.0, 2.0]
    # types: t0 x3, t1 x1 -> 4/3, 4/3, 4, 4/3; scenarios: s2 x3, s1 x1 -> 4/3, 4/3, 4/3, 4
    assert axis_weights(TYPES, SCENS).tolist() == pytest.approx([4 / 3, 4 / 3, 8 / 3, 8 / 3])
