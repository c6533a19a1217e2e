"""`es-dfm`: elapsed-time sampling delayed feedback (Yang et al., "Capturing Delayed Feedback in
Conversion Rate Prediction via Elapsed-Time Sampling", AAAI 2021).

A click is learnt after an elapsed time e (the observation window O) with the label seen
by then, and a conversion after O comes as one more positive. Per click x the stream then
holds, over 1 + p_dp(x) rows, positives with mass p(x) and negatives with mass
1 - p(x) + p_dp(x), where p_dp is the probability of a delayed positive (conversion after
O). Importance weighting to the true distribution gives (paper, Eq. 9-10)

    w_pos = 1 + f_dp(x),    w_neg = (1 + f_dp(x)) * f_rn(x),

f_dp from an auxiliary model of P(delayed positive | x) and f_rn of P(real negative |
x, observed negative at O), both trained online beside the main model (`aux.DelayModel`)
from the rows the joiner adds at click + A (`LabelConfig.final_copy`): `delayed-final` for
a delayed positive, `final` for every other click. The main model does not learn them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from ops.training.delayed.aux import DelayPrediction
from ops.training.delayed.base import DelayedFeedback
from streaming.labels import LabelConfig


def esdfm_weights(label: Tensor, f_dp: Tensor, f_rn: Tensor) -> Tensor:
    """(1 + f_dp) for positives, (1 + f_dp) f_rn for negatives.

    >>> w = esdfm_weights(torch.tensor([1.0, 0.0]), torch.tensor([0.1, 0.1]), torch.tensor([0.9, 0.5]))
    >>> [round(x, 4) for x in w.tolist()]
    [1.1, 0.55]
    """
    return torch.where(label > 0.5, 1 + f_dp, (1 + f_dp) * f_rn)


class EsDfm(DelayedFeedback):
    """Fake negatives at O, positive copies, ES-DFM weights from the auxiliary delay model."""

    name = "es-dfm"
    uses_aux = True
    copies = frozenset({"delayed-positive", "final", "delayed-final"})

    def labels(self, base: LabelConfig) -> LabelConfig:
        return dataclasses.replace(base, policy="fake-negative", final_copy=True)

    def trains(self, kinds: np.ndarray) -> np.ndarray:
        return ~np.isin(kinds, ("final", "delayed-final"))

    def weights(
        self, kinds: np.ndarray, label: Tensor, p: Tensor, aux: DelayPrediction | None
    ) -> Tensor:
        assert aux is not None, "es-dfm weights need the auxiliary model's predictions"
        return esdfm_weights(label, aux.dp, aux.rn)
