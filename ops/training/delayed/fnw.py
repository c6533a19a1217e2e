"""`fnw`: fake negative weighting (Ktena et al., "Addressing Delayed Feedback for Continuous
Training with Neural Networks in CTR Prediction", RecSys 2019, section 4.3).

FNW assumes every click is first learnt as a negative at once (observation window 0) and
learnt again as a positive when it converts. Then the observed distribution is
b(y=1|x) = p(y=1|x) / (1 + p(y=1|x)), and the importance weights p/b give the loss
- sum_pos (1 + p) log f(x) - sum_neg (1 - p)(1 + p) log(1 - f(x)), with p the model's
own prediction, gradient stopped. The method therefore labels with O = 0 whatever the
joiner's window: with a longer window the positives decided inside it would be weighted
as if they had been duplicated.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from ops.training.delayed.aux import DelayPrediction
from ops.training.delayed.base import DelayedFeedback
from streaming.labels import LabelConfig


def fnw_weights(p: Tensor, label: Tensor) -> Tensor:
    """1 + p for positives, (1 - p)(1 + p) for negatives.

    >>> w = fnw_weights(torch.tensor([0.2, 0.2, 0.5]), torch.tensor([1.0, 0.0, 0.0]))
    >>> [round(x, 4) for x in w.tolist()]
    [1.2, 0.96, 0.75]
    """
    p = p.detach()
    return torch.where(label > 0.5, 1 + p, (1 - p) * (1 + p))


class Fnw(DelayedFeedback):
    """Every click a negative at once, a positive copy on conversion, FNW weights."""

    name = "fnw"

    def labels(self, base: LabelConfig) -> LabelConfig:
        return dataclasses.replace(
            base, policy="fake-negative", observation_window_s=0, final_copy=False
        )

    def weights(
        self, kinds: np.ndarray, label: Tensor, p: Tensor, aux: DelayPrediction | None
    ) -> Tensor:
        return fnw_weights(p, label)
