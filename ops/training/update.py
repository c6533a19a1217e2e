"""The learner's update step: the model, its loss and its optimizer step.

The model's optimizers come from one factory (`model.optimizers.model_optimizer`): dense
for the towers and, with `sparse`, a sparse step for the embedding tables that touches only
the batch's rows. The registered losses are means over the rows; a step's loss is their sum
divided by max(rows, nominal_rows), so a small step moves the model less than a full one (a
mean would move it as far). The step's state: the model's weights (a snapshot's
"state_dict") and its optimizers' states (a checkpoint's "optimizer" and "sparse_optimizer").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from model import zoo as models
from model.batch import Batch, BatchShare, Logits
from model.optimizers import model_optimizer
from model.scoring import ScoreRule, scored_logits
from model.snapshot import on_cpu
from ops.training.learner_config import LearnerConfig


class ModelUpdate:
    """The registered model of config on device, trained by its optimizers.

    The weights are initialised on the CPU from config's seed (the same weights on every
    device), then moved to device.
    """

    def __init__(
        self, config: LearnerConfig, lr: float, score_rule: ScoreRule, device: torch.device
    ) -> None:
        self.spec = models.get(config.model)
        self.device = device
        self.score_rule = score_rule
        self.nominal_rows = config.nominal_rows
        torch.manual_seed(config.seed)
        self.model = self.spec.build(config.model_config).to(device)
        self.model.train()
        assert config.optimizer is not None  # LearnerConfig resolves it
        self.optimizer = model_optimizer(config.optimizer, self.model, lr=lr, sparse=config.sparse)

    def logits(self, batch: Batch) -> Logits:
        """The model's logits as trained and scored (the constant CTR logit if click-only)."""
        return scored_logits(self.model(batch), self.score_rule)

    def loss(self, logits: Logits, batch: Batch, share: BatchShare | None = None) -> torch.Tensor:
        """The registered loss of logits on batch (on device), rescaled to sum / max(rows, nominal).

        share: the rows are part of a step split across processes (`ops.training.
        data_parallel`): the loss is their share of the whole step's.
        """
        rows = len(batch) if share is None else len(share)
        loss = self.spec.loss(logits, batch, share=share)
        return loss * (rows / max(rows, self.nominal_rows))

    def zero_grad(self) -> None:
        """Clear the gradients of every parameter the optimizers step."""
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        """Step the optimizers (dense, and sparse embeddings) on the gradients."""
        self.optimizer.step()

    def state(self) -> dict[str, Any]:
        """The optimizers' states, copied to the CPU, under the keys checkpoints have always used."""
        optimizer = self.optimizer.state_dict()
        return {
            "optimizer": on_cpu(optimizer["dense"]),
            "sparse_optimizer": on_cpu(optimizer["sparse"]),
        }

    def load_state(self, weights: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> None:
        """Continue from the model's weights and a `state()` (or a checkpoint holding one)."""
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(
            {"dense": state["optimizer"], "sparse": state["sparse_optimizer"]}
        )
