"""The optimizers a model can be trained with, by name: one factory for training, offline and benches.

- `adagrad`: PyTorch's Adagrad (accumulator starts at 0, eps 1e-10), fused. With a zero
  start, the first step of every coordinate is lr * sign(g): each coordinate is rescaled
  by its own gradient history, so a constant factor on a parameter's loss changes nothing.
- `adagrad-tf`: TensorFlow's Adagrad, the paper's optimizer ("implemented in Tensorflow and
  optimized by the Adagrad algorithm"): the accumulator starts at 0.1 and eps is 1e-7, so
  small gradients take steps of about lr * g / sqrt(0.1) and a loss's scale matters.
- `adam`, `sgd`: PyTorch's defaults.

Suggested learning-rate grids (`LR_GRIDS`, for `mmn bench offline --lr-grid auto`) cover
each optimizer's useful range on the synthetic log (README, "MMN as the paper ran it").

>>> import torch
>>> p = torch.nn.Parameter(torch.tensor([1.0]))
>>> opt = make_optimizer("adagrad-tf", [p], lr=0.1)
>>> p.grad = torch.tensor([0.5])
>>> opt.step()
>>> round(p.item(), 6)  # 1 - 0.1 * 0.5 / (sqrt(0.1 + 0.25) + 1e-7)
0.915485
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZERS = ("adagrad", "adagrad-tf", "adam", "sgd")

TF_INITIAL_ACCUMULATOR = 0.1
TF_EPSILON = 1e-7

LR_GRIDS: dict[str, tuple[float, ...]] = {
    "adagrad": (0.003, 0.006, 0.01, 0.02, 0.04),
    "adagrad-tf": (0.01, 0.02, 0.04, 0.08, 0.16),
    "adam": (0.0003, 0.001, 0.003),
    "sgd": (0.01, 0.03, 0.1, 0.3),
}


def make_optimizer(name: str, parameters: Iterable, *, lr: float) -> torch.optim.Optimizer:
    """The optimizer `name` (one of OPTIMIZERS) over parameters at learning rate lr."""
    params = list(parameters)
    if name == "adagrad":
        # fused: ~7 ms a step for the MMN tower against ~47 ms unfused (DESIGN.md, section 4).
        return torch.optim.Adagrad(params, lr=lr, fused=True)
    if name == "adagrad-tf":
        return torch.optim.Adagrad(
            params,
            lr=lr,
            initial_accumulator_value=TF_INITIAL_ACCUMULATOR,
            eps=TF_EPSILON,
            fused=True,
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
