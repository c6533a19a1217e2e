"""The contract every delayed-feedback method follows (see `ops.training.delayed`)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from ops.training.delayed.aux import DelayPrediction
from streaming.labels import Decision, LabelConfig, Record, decide


class DelayedFeedback:
    """One way to learn from delayed conversions; the default is `vanilla`'s (no correction).

    name: what `mmn train --method` and `mmn bench stream --methods` call it.
    uses_aux: whether the learner keeps the auxiliary delay model (`aux.DelayModel`) beside
        the main one, trained online from the rows whose delay it can tell.
    copies: the kinds that repeat a click already counted (their CTR term weighs 0).
    """

    name: ClassVar[str] = "vanilla"
    uses_aux: ClassVar[bool] = False
    copies: ClassVar[frozenset[str]] = frozenset({"delayed-positive"})

    def labels(self, base: LabelConfig) -> LabelConfig:
        """How the joiner labels: base's windows, fake negatives and corrections."""
        return dataclasses.replace(base, policy="fake-negative", final_copy=False)

    def decisions(self, record: Record, impression_id: str, base: LabelConfig) -> list[Decision]:
        """The decisions the joiner takes on one record (what `mmn bench stream` replays)."""
        return decide(record, impression_id, self.labels(base))

    def trains(self, kinds: np.ndarray) -> np.ndarray:
        """Which rows the main model learns from (bool, one per row)."""
        return np.ones(len(kinds), dtype=bool)

    def weights(
        self, kinds: np.ndarray, label: Tensor, p: Tensor, aux: DelayPrediction | None
    ) -> Tensor:
        """The weight of each row's conversion term.

        kinds: the rows' example kinds; label: click * conversion, (B,); p: the main model's
        p_ctr * p_cvr, detached, (B,); aux: the auxiliary model's predictions (uses_aux).
        """
        return torch.ones_like(p)

    def click_weights(self, kinds: np.ndarray) -> Tensor:
        """1 for a row whose click is new, 0 for a copy of a click already counted, (B,).

        >>> DelayedFeedback().click_weights(np.array(["negative", "delayed-positive"])).tolist()
        [1.0, 0.0]
        """
        return torch.from_numpy(~np.isin(kinds, list(self.copies))).to(torch.float32)
