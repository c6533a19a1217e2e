"""`defer`: delayed feedback modeling with real negatives (Gu et al., "Real Negatives Matter:
Continuous Training with Real Negatives for Delayed Feedback Modeling", KDD 2021).

Like ES-DFM, a click is learnt at the observation window's end with the label seen then
and again as a positive when it converts later; unlike it, every other click is learnt a
second time at the attribution window's end with its final label (`final` rows: the real
negatives, and the positives decided within O), so every click appears twice and the
feature distribution is the true one. Per click the stream holds positives with mass
2p - p_dp and negatives with mass 2(1 - p) + p_dp; importance weights (paper, Eq. 9):

    w_pos = p / (p - p_dp / 2),    w_neg = (1 - p) / (1 - p + p_dp / 2),

with p the main model's prediction (gradient stopped) and p_dp the auxiliary model's
probability of a delayed positive (`aux.DelayModel`, learnt as in ES-DFM from the rows at
click + A; the `delayed-final` rows teach only it). p_dp <= p by
definition, so the estimate is capped at p: the positive weight stays <= 2.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from ops.training.delayed.aux import DelayPrediction
from ops.training.delayed.base import DelayedFeedback
from streaming.labels import LabelConfig


def defer_weights(label: Tensor, p: Tensor, f_dp: Tensor) -> Tensor:
    """p / (p - f_dp / 2) for positives, (1 - p) / (1 - p + f_dp / 2) for negatives.

    >>> w = defer_weights(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.2, 0.2, 0.1]),
    ...                   torch.tensor([0.1, 0.1, 0.3]))
    >>> [round(x, 4) for x in w.tolist()]
    [1.3333, 0.9412, 2.0]
    """
    p = p.detach().clamp(1e-7, 1 - 1e-7)
    half = torch.minimum(f_dp, p) / 2
    return torch.where(label > 0.5, p / (p - half), (1 - p) / (1 - p + half))


class Defer(DelayedFeedback):
    """Fake negatives at O, positive copies, every other click again at A; DEFER weights."""

    name = "defer"
    uses_aux = True
    copies = frozenset({"delayed-positive", "final", "delayed-final"})

    def labels(self, base: LabelConfig) -> LabelConfig:
        return dataclasses.replace(base, policy="fake-negative", final_copy=True)

    def trains(self, kinds: np.ndarray) -> np.ndarray:
        # A delayed positive is in twice already (negative at O, positive on conversion);
        # its `delayed-final` row is only for the auxiliary model.
        return kinds != "delayed-final"

    def weights(
        self, kinds: np.ndarray, label: Tensor, p: Tensor, aux: DelayPrediction | None
    ) -> Tensor:
        assert aux is not None, "defer weights need the auxiliary model's predictions"
        return defer_weights(label, p, aux.dp)
