"""The tensor mini-batch every model reads, and the logits every model returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """A mixed-domain mini-batch of B rows over F feature fields.

    ids:        (B, F) int64, per-field hashed feature ids in [0, buckets) (see model.features)
    conv_type:  (B,) int64, conversion-type index in the type vocabulary (0 is "other")
    scenario:   (B,) int64, display-scenario index in the scenario vocabulary (0 is "other")
    click:      (B,) float32, click label y
    conversion: (B,) float32, conversion label z (0 where click is 0)
    weight:     (B,) float32, per-row weight of the conversion (CTCVR) term (delayed-feedback
                corrections); ones by default
    click_weight: (B,) float32, per-row weight of the click (CTR) term; ones by default, 0 for
                a delayed-feedback copy of a click already counted (its click is not a new one)
    """

    ids: Tensor
    conv_type: Tensor
    scenario: Tensor
    click: Tensor
    conversion: Tensor
    weight: Tensor
    click_weight: Tensor

    def __len__(self) -> int:
        return self.ids.shape[0]

    @staticmethod
    def of(
        ids: Tensor,
        conv_type: Tensor,
        scenario: Tensor,
        click: Tensor | None = None,
        conversion: Tensor | None = None,
        weight: Tensor | None = None,
        click_weight: Tensor | None = None,
    ) -> Batch:
        """A batch with unlabeled defaults (click 1, conversion 0, weights 1) where labels are absent."""
        n = ids.shape[0]
        return Batch(
            ids=ids,
            conv_type=conv_type,
            scenario=scenario,
            click=torch.ones(n) if click is None else click,
            conversion=torch.zeros(n) if conversion is None else conversion,
            weight=torch.ones(n) if weight is None else weight,
            click_weight=torch.ones(n) if click_weight is None else click_weight,
        )

    def to(self, device: torch.device | str) -> Batch:
        """The batch with every tensor on device."""
        return Batch(*(t.to(device) for t in self.__dict__.values()))

    def slice(self, start: int, stop: int) -> Batch:
        """Rows [start, stop) of the batch."""
        return Batch(*(t[start:stop] for t in self.__dict__.values()))


@dataclass(frozen=True)
class BatchShare:
    """A batch as rows [start, start + B) of a whole batch split across processes
    (data-parallel training): the whole's domain and click columns, (N,) each.

    A loss given a share returns this part's share of the whole's loss (its rows' terms
    over the whole's row counts and domain weights), so the shares' gradients sum to the
    gradient of the whole batch's loss.
    """

    conv_type: Tensor
    scenario: Tensor
    click: Tensor
    start: int

    def __len__(self) -> int:
        return self.conv_type.shape[0]

    def rows(self, n: int) -> slice:
        """The whole's rows that are this part's n rows."""
        return slice(self.start, self.start + n)


class Logits(NamedTuple):
    """What every model returns: pre-sigmoid CTR and CVR logits, each (B,).

    p_ctr = sigmoid(ctr), p_cvr = sigmoid(cvr), p_ctcvr = p_ctr * p_cvr (ESMM).
    """

    ctr: Tensor
    cvr: Tensor
