"""Variants of MMN's dynamic weight (Eq. 3), each registered as an ablation of MMN.

The paper's weight (`model.losses.domain_weights`, model `mmn`) multiplies a row of domain
c = (type, scenario) by N / N_c, N_c being the rows of c in the batch. On a skewed log most
domains of a batch hold a handful of rows that then carry most of the CTCVR term's weight
(README: a 2,048-row batch of the synthetic log, 22% of the rows, 69% of the weight), and
the mean weight is the number of domains in the batch, so the term's scale moves from batch
to batch. Each variant changes one thing:

- `mmn_dw_norm`: self-normalised, w / mean(w) over the batch: each domain's mean loss
  counts equally, the term keeps ESMM's scale (mean weight 1).
- `mmn_dw_temp`: tempered, (N / N_c) ** TEMPER_BETA: halfway (on a log scale) to no weight.
- `mmn_dw_clip`: clipped, N / max(N_c, CLIP_MIN_ROWS): domains with fewer rows than that
  in the batch are not weighted up further.
- `mmn_dw_axes`: per-type plus per-scenario, (N / N_t + N / N_s) / 2, N_t and N_s the rows
  of the row's type and of its scenario in the batch: the margins the paper's tables
  report, each far less sparse than the pairs.

`mmn` stays the literal Eq. 3.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from model.losses import WeightFn, domain_weights, weighted_loss
from model.mmn import MMN
from model.spec import MMN_ONLINE_LR, ModelSpec

TEMPER_BETA = 0.5
CLIP_MIN_ROWS = 10


def normalised_weights(conv_type: Tensor, scenario: Tensor) -> Tensor:
    """N / N_c divided by its batch mean, (B,).

    >>> normalised_weights(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 2, 2, 1])).tolist()
    [0.6666666865348816, 0.6666666865348816, 1.3333333730697632, 1.3333333730697632]
    """
    w = domain_weights(conv_type, scenario)
    return w / w.mean()


def tempered_weights(conv_type: Tensor, scenario: Tensor, beta: float = TEMPER_BETA) -> Tensor:
    """(N / N_c) ** beta, (B,).

    >>> tempered_weights(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 2, 2, 1]), 0.5).tolist()
    [1.4142135381698608, 1.4142135381698608, 2.0, 2.0]
    """
    return domain_weights(conv_type, scenario) ** beta


def clipped_weights(conv_type: Tensor, scenario: Tensor, k: int = CLIP_MIN_ROWS) -> Tensor:
    """N / max(N_c, k), (B,).

    >>> clipped_weights(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 2, 2, 1]), 2).tolist()
    [2.0, 2.0, 2.0, 2.0]
    """
    n = len(conv_type)
    n_c = n / domain_weights(conv_type, scenario)
    return n / n_c.clamp(min=float(k))


def axis_weights(conv_type: Tensor, scenario: Tensor) -> Tensor:
    """(N / N_t + N / N_s) / 2: per-type plus per-scenario weights, (B,).

    >>> [round(x, 4) for x in axis_weights(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 2, 2, 1])).tolist()]
    [1.3333, 1.3333, 2.6667, 2.6667]
    """
    zeros = torch.zeros_like(conv_type)
    return (domain_weights(conv_type, zeros) + domain_weights(zeros, scenario)) / 2


_VARIANTS: tuple[tuple[str, WeightFn, str], ...] = (
    ("mmn_dw_norm", normalised_weights, "self-normalised weights w / mean(w)"),
    ("mmn_dw_temp", tempered_weights, f"tempered weights (N / N_c) ** {TEMPER_BETA}"),
    ("mmn_dw_clip", clipped_weights, f"clipped weights N / max(N_c, {CLIP_MIN_ROWS})"),
    ("mmn_dw_axes", axis_weights, "per-type plus per-scenario weights (N/N_t + N/N_s) / 2"),
)

SPECS: list[ModelSpec] = [
    ModelSpec(
        name=name,
        description=f"MMN ablation: {text} instead of Eq. 3's N / N_c",
        build=MMN,
        loss=partial(weighted_loss, domain_weight=fn),
        param_sets=lambda c: c.n_types + c.n_scenarios + 1,
        datasets=lambda c: 1,
        lr=MMN_ONLINE_LR,
    )
    for name, fn, text in _VARIANTS
]
