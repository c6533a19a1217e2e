"""What a model is to the rest of the project: how to build it and which loss trains it.

A variant is a different spec (another module or another loss), never a flag inside a
model. Every model honours one contract: `model(batch) -> Logits` with (B,) CTR and CVR
logits; the loss lives outside the model. Specs are listed by name in `model.zoo`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor, nn

from model.batch import Batch, BatchShare, Logits
from model.config import ModelConfig


class LossFn(Protocol):
    """A training loss: (logits, batch) -> scalar; with `share`, the batch's share of the
    whole batch's loss (`model.batch.BatchShare`, data-parallel training)."""

    def __call__(self, logits: Logits, batch: Batch, *, share: BatchShare | None = None) -> Tensor:
        """The loss of the batch, or of its share of the whole."""


DEFAULT_LR = 0.01
MMN_ONLINE_LR = 0.005
"""Online learning rate of the MMN variants with a dynamic weight (PyTorch Adagrad): half
ESMM's. Swept for `mmn_dw_clip` (docs/results.md); the other weighted variants share it."""


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A registered model.

    build: makes the module from the shared config.
    loss: the training loss of this model, (logits, batch) -> scalar.
    param_sets: number of domain-specific parameter sets (the paper's scalability figure).
    datasets: number of separate datasets training needs (the paper's convenience figure).
    optimizer, lr: how it learns online unless told otherwise (`mmn train --optimizer`,
        `--lr`). PyTorch Adagrad everywhere (TF Adagrad and Adam lost to it online); the
        rate is 0.01 (the offline experiment's best) except where an online sweep chose
        another: MMN's composed towers learn best online at about half ESMM's rate
        (`mmn bench stream --lr X` over a grid, docs/results.md).
    """

    name: str
    description: str
    build: Callable[[ModelConfig], nn.Module]
    loss: LossFn
    param_sets: Callable[[ModelConfig], int]
    datasets: Callable[[ModelConfig], int]
    optimizer: str = "adagrad"
    lr: float = DEFAULT_LR
