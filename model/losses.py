"""Training losses: ESMM's (paper Eq. 2) and MMN's dynamically weighted one (Eq. 3).

Both are `loss_ctr + alpha * loss_ctcvr` over a mini-batch of N rows, with
p_ctcvr = p_ctr * p_cvr; a row's CTCVR term is multiplied by its sample weight
(`Batch.weight`, e.g. delayed-feedback corrections) and its CTR term by `Batch.click_weight`
(0 for a delayed-feedback copy of a click already counted). MMN's CTCVR term weights a row of domain c
(its (type, scenario) pair) by N / N_c, N_c being the rows of c *in this batch*, so that
every domain present in the batch is averaged over its own rows.

Click-only data (every row clicked, as in the Criteo search log): the CTR label is the
constant 1, so the CTR term carries no signal, and the loss pins only p_ctr * p_cvr: which
tower holds the conversion signal is not identified (the CTR tower can absorb part of it,
leaving p_cvr a residual). So on a log with no non-clicked rows, models with a CTR tower
run with `click_only`: the CTR logit is the constant CLICK_ONLY_CTR_LOGIT (p_ctr = 1 in
float32), the tower is neither trained (no gradient reaches it) nor used, the CTCVR term
is the CVR log loss and p_cvr is the score. The offline experiment and the online learner
apply it alike (ops.evaluation.offline, ops.training.learner).

Log probabilities come from logits (logsigmoid), and log(1 - p_ctr * p_cvr) from the
identity 1 - s(a) s(b) = s(-a) + s(a) s(-b), so no probability is ever rounded to 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from model.batch import Batch, BatchShare, Logits

DEFAULT_ALPHA = 1.0

WeightFn = Callable[[Tensor, Tensor], Tensor]
"""A per-row domain weight of the CTCVR term: (conv_type, scenario) -> (B,)."""
CLICK_ONLY_CTR_LOGIT = 30.0  # sigmoid(30) rounds to 1 in float32; logsigmoid(30) ~ -1e-13


def click_only(logits: Logits) -> Logits:
    """The logits used on click-only data: a constant CTR logit (no gradient), the model's CVR logit.

    >>> click_only(Logits(torch.tensor([-3.0, 2.0]), torch.tensor([0.5, -1.0]))).ctr.tolist()
    [30.0, 30.0]
    """
    return Logits(torch.full_like(logits.cvr, CLICK_ONLY_CTR_LOGIT).detach(), logits.cvr)


def ctr_log_loss(logits: Logits, batch: Batch) -> Tensor:
    """Per-row CTR cross-entropy, (B,)."""
    return F.binary_cross_entropy_with_logits(logits.ctr, batch.click, reduction="none")


def ctcvr_log_loss(logits: Logits, batch: Batch) -> Tensor:
    """Per-row cross-entropy of p_ctr * p_cvr against click * conversion, (B,)."""
    a, b = logits.ctr, logits.cvr
    log_p = F.logsigmoid(a) + F.logsigmoid(b)
    log_not_p = torch.logaddexp(F.logsigmoid(-a), F.logsigmoid(a) + F.logsigmoid(-b))
    label = batch.click * batch.conversion
    return -(label * log_p + (1 - label) * log_not_p)


def domain_weights(conv_type: Tensor, scenario: Tensor) -> Tensor:
    """N / N_c per row, N_c = rows of the row's (type, scenario) domain in this batch, (B,).

    >>> domain_weights(torch.tensor([0, 0, 1, 0]), torch.tensor([2, 2, 2, 1])).tolist()
    [2.0, 2.0, 4.0, 4.0]
    """
    domain = conv_type * (int(scenario.max()) + 1) + scenario
    _, inverse, counts = torch.unique(domain, return_inverse=True, return_counts=True)
    return len(domain) / counts[inverse].to(torch.float32)


def weighted_loss(
    logits: Logits,
    batch: Batch,
    *,
    domain_weight: WeightFn | None = None,
    alpha: float = DEFAULT_ALPHA,
    share: BatchShare | None = None,
) -> Tensor:
    """The one training loss of every ESMM-style model: mean CTR + alpha * mean CTCVR.

    A row's CTR term is weighted by `click_weight`, its CTCVR term by its sample `weight`
    times `domain_weight(conv_type, scenario)` (none: ESMM's Eq. 2; N / N_c: MMN's Eq. 3;
    the ablations of `model.dynamic_weights` another function). Every variant goes through
    here, so the terms' sample weights cannot drift apart between them.

    share: the batch is part of a whole (`BatchShare`): the means are over the whole's
    rows and the domain weights those of the whole, so the parts' losses sum to its loss.
    """
    whole = share or BatchShare(batch.conv_type, batch.scenario, batch.click, 0)
    ctr = (batch.click_weight * ctr_log_loss(logits, batch)).sum() / len(whole)
    weight = batch.weight
    if domain_weight is not None:
        weight = weight * domain_weight(whole.conv_type, whole.scenario)[whole.rows(len(batch))]
    ctcvr = (weight * ctcvr_log_loss(logits, batch)).sum() / len(whole)
    return ctr + alpha * ctcvr


def esmm_loss(
    logits: Logits, batch: Batch, *, alpha: float = DEFAULT_ALPHA, share: BatchShare | None = None
) -> Tensor:
    """ESMM's loss (paper Eq. 2): mean CTR loss + alpha * mean CTCVR loss, sample-weighted."""
    return weighted_loss(logits, batch, alpha=alpha, share=share)


def mmn_loss(
    logits: Logits, batch: Batch, *, alpha: float = DEFAULT_ALPHA, share: BatchShare | None = None
) -> Tensor:
    """MMN's dynamically weighted loss (paper Eq. 3): the CTCVR term weighted by N / N_c."""
    return weighted_loss(logits, batch, domain_weight=domain_weights, alpha=alpha, share=share)
