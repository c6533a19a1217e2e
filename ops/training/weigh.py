"""The learner's weigh step: what the delayed-feedback method makes of a step's rows.

The method (`ops.training.delayed`) says which rows the main model learns, the weight of
each row's conversion term and of its click term (0 for a copy of a click already
counted). ES-DFM and DEFER weigh with an auxiliary delay model (`delayed.aux`), which
predicts a step's rows before it learns from them (no peeking at labels) and takes its own
optimizer step here. The delay model, weights and optimizer state, is the step's state.

>>> import numpy as np
>>> from ops.training import delayed
>>> weigh = Weigh(delayed.get("es-dfm"), aux=None)
>>> weigh.method.trains(np.array(["negative", "final"], dtype=object)).tolist()
[True, False]
>>> weigh.state() is None  # no delay model: nothing to keep
True
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor

from model.batch import Batch
from ops.training import delayed
from ops.training.delayed.aux import DelayLearner, DelayPrediction
from ops.training.learner_config import LearnerConfig


class Weigh:
    """A delayed-feedback method and its auxiliary delay model (None if it uses none)."""

    def __init__(self, method: delayed.DelayedFeedback, aux: DelayLearner | None) -> None:
        self.method, self.aux = method, aux

    @classmethod
    def fresh(cls, config: LearnerConfig, lr: float) -> Weigh:
        """config's method, with a new delay model at learning rate lr if the method uses one."""
        method = delayed.get(config.method)
        aux = None
        if method.uses_aux:
            assert config.optimizer is not None  # LearnerConfig resolves it
            aux = DelayLearner(
                config.model_config.n_fields,
                config.model_config.buckets,
                nominal_rows=config.nominal_rows,
                optimizer=config.optimizer,
                lr=lr,
            )
        return cls(method, aux)

    def select(
        self, batch: Batch, kinds: np.ndarray
    ) -> tuple[Batch, np.ndarray, DelayPrediction | None]:
        """The rows the main model learns, their kinds and the delay model's predictions.

        The delay model, if any, predicts every row first, then learns from the rows whose
        delay they tell.
        """
        aux = self.aux.predict(batch.ids) if self.aux is not None else None
        if self.aux is not None:
            self.aux.learn(batch.ids, kinds, batch.conversion.numpy())
        main = self.method.trains(kinds)
        if not main.all():
            pick = torch.from_numpy(np.flatnonzero(main))
            batch = Batch(**{name: t[pick] for name, t in vars(batch).items()})
            kinds = kinds[main]
            aux = None if aux is None else aux.rows(pick)
        return batch, kinds, aux

    def weights(
        self, batch: Batch, kinds: np.ndarray, p: Tensor, aux: DelayPrediction | None
    ) -> tuple[Tensor, Tensor]:
        """The rows' conversion-term and click-term weights: the batch's own times the method's.

        p: the main model's predictions of the rows before the step, detached, (B,).
        """
        weight = self.method.weights(kinds, batch.click * batch.conversion, p, aux)
        return batch.weight * weight, batch.click_weight * self.method.click_weights(kinds)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The delay model's optimizers (none without one)."""
        return [] if self.aux is None else self.aux.optimizer.parts

    def set_lr(self, lr: float) -> None:
        """Apply a new learning rate to every parameter group of the delay model's optimizers."""
        if self.aux is not None:
            self.aux.optimizer.set_lr(lr)

    def state(self) -> dict[str, Any] | None:
        """The delay model's weights and optimizer states (`DelayLearner.state`); None without.

        A copy, as the other steps' states are: `DelayLearner.state` holds the live tensors,
        which the next step would change under a state kept in memory.
        """
        return None if self.aux is None else copy.deepcopy(self.aux.state())

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Continue the delay model from a `state()` (nothing to load without one)."""
        if self.aux is not None:
            assert state is not None, "a method with a delay model resumes from its state"
            self.aux.load_state(state)
