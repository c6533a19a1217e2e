"""`mmn train --lr auto`: a small grid of learning rates raced on the stream's first days.

During a warm-up window of event time, one learner per rate of the grid (the model's own
rate times each of `factors`) is trained side by side on the same mini-batches, each from
the same seed. Each one's rows are scored by its forward pass before its step
(progressive validation, labels as known at training time), and its log loss is summed.
Once the watermark is `warmup_s` past the first one, the rate with the lowest mean log
loss wins (ties: the smaller rate), and the run continues with that learner alone, as if
it had been trained at that rate from the start. Nothing is published before the choice,
so a run killed during the warm-up restarts from the stream's beginning and races again
on the same mini-batches: the choice does not depend on when it was killed.

Neither the delayed-feedback papers nor the ESMM/MMN papers (nor river) offer this for a
deep CVR model online: it is measured against the tuned fixed rate (docs/results.md). The
rate that is best over the first two weeks need not be the one that is best over the
stream: on a 200,000-row synthetic log the race chose half the tuned rate of
`mmn_dw_clip` and scored 0.007 AUC below it afterwards, so the per-model defaults, not the
race, are what `mmn train` uses unless told `--lr auto`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ops.metrics import EPS
from ops.training.learner import LearnerConfig, OnlineLearner, StepResult
from ops.training.rows import LabeledRows

DEFAULT_FACTORS = (0.25, 0.5, 1.0, 2.0)


def grid(base: float, factors: Sequence[float] = DEFAULT_FACTORS) -> tuple[float, ...]:
    """The rates raced: base times each factor, rounded to 6 significant digits.

    >>> grid(0.005)
    (0.00125, 0.0025, 0.005, 0.01)
    """
    return tuple(sorted({float(f"{base * f:.6g}") for f in factors}))


class LearningRateSearch:
    """One learner per rate, stepped on the same rows, until the warm-up has passed.

    `current` is the learner at rate `follow` (the model's own): what progress lines and
    progressive validation follow while the race runs.
    """

    def __init__(
        self,
        config: LearnerConfig,
        *,
        rates: Sequence[float],
        follow: float,
        warmup_s: int,
        make: Callable[[LearnerConfig], OnlineLearner] = OnlineLearner,
    ) -> None:
        if follow not in rates:
            raise ValueError(f"the rate followed, {follow}, is not among {list(rates)}")
        self.rates = tuple(rates)
        self.warmup_s = warmup_s
        self.learners = {lr: make(dataclasses.replace(config, lr=lr)) for lr in self.rates}
        self.current = self.learners[follow]
        self.loss_sum = dict.fromkeys(self.rates, 0.0)
        self.scored = 0
        self.started: int | None = None  # the first watermark

    def step(self, rows: LabeledRows) -> StepResult:
        """Step every learner on rows; add each one's progressive-validation log loss."""
        result = StepResult(trained=0, dropped=0, loss=math.nan)
        for lr, learner in self.learners.items():
            got = learner.step(rows)
            if learner is self.current:
                result = got
                continue
            self._score(lr, learner)
        # The current learner's scores are read (and cleared) by the trainer's validation
        # after this step; count them here first.
        self._score(self._rate_of(self.current), self.current, clear=False)
        if self.started is None and self.current.watermark is not None:
            self.started = self.current.watermark
        return result

    def _score(self, lr: float, learner: OnlineLearner, *, clear: bool = True) -> None:
        scored = learner.last_scored
        if scored is None:
            return
        clicked = scored["click"] > 0
        y = scored["conversion"][clicked].astype(np.float64)
        p = np.clip(scored["p"][clicked].astype(np.float64), EPS, 1 - EPS)
        self.loss_sum[lr] -= float(np.sum(y * np.log(p) + (1 - y) * np.log1p(-p)))
        if learner is self.current:
            self.scored += len(y)
        if clear:
            learner.last_scored = None

    def _rate_of(self, learner: OnlineLearner) -> float:
        return next(lr for lr, other in self.learners.items() if other is learner)

    def done(self) -> bool:
        """Whether the watermark is warmup_s of event time past the first one."""
        watermark = self.current.watermark
        return (
            self.started is not None
            and watermark is not None
            and watermark - self.started >= self.warmup_s
        )

    def figures(self) -> dict[str, Any]:
        """The race so far: each rate's mean log loss, the rows scored, the winner."""
        n = max(self.scored, 1)
        losses = {repr(lr): self.loss_sum[lr] / n for lr in self.rates}
        best = min(self.rates, key=lambda lr: (self.loss_sum[lr], lr))
        return {
            "rates": list(self.rates),
            "log_loss": losses,
            "rows_scored": self.scored,
            "warmup_s": self.warmup_s,
            "from_watermark": self.started,
            "to_watermark": self.current.watermark,
            "chosen": best,
        }

    def choose(self) -> tuple[OnlineLearner, dict[str, Any]]:
        """The winning learner (its config records its rate) and the race's figures."""
        figures = self.figures()
        return self.learners[figures["chosen"]], figures
