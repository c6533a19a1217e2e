"""The optimizers a model can be trained with, by name: one factory for training, offline and benches.

- `adagrad`: PyTorch's Adagrad (accumulator starts at 0, eps 1e-10), fused. With a zero
  start, the first step of every coordinate is lr * sign(g): each coordinate is rescaled
  by its own gradient history, so a constant factor on a parameter's loss changes nothing.
- `adagrad-tf`: TensorFlow's Adagrad, the paper's optimizer ("implemented in Tensorflow and
  optimized by the Adagrad algorithm"): the accumulator starts at 0.1 and eps is 1e-7, so
  small gradients take steps of about lr * g / sqrt(0.1) and a loss's scale matters.
- `adam`, `sgd`: PyTorch's defaults.

Learning rates: TensorFlow's start makes a step about lr * g / 0.32 for small gradients, so
its useful rates sit far higher and spread wider across models than PyTorch's (a loss
scaled up, as Eq. 3's is by the number of domains in a batch, takes larger steps): on the
synthetic log `--lr-grid 0.02,0.2,2` for adagrad-tf against `0.01,0.03,0.1` for adagrad
(README, "MMN as the paper ran it").

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

from model.errors import ModelConfigError

OPTIMIZERS = ("adagrad", "adagrad-tf", "adam", "sgd")

TF_INITIAL_ACCUMULATOR = 0.1
TF_EPSILON = 1e-7


def make_optimizer(
    name: str, parameters: Iterable, *, lr: float, sparse: bool = False
) -> torch.optim.Optimizer:
    """The optimizer `name` (one of OPTIMIZERS) over parameters at learning rate lr.

    sparse: for parameters with sparse gradients (embedding tables): Adagrad and SGD take
    them unfused (Adagrad's untouched rows neither move nor accumulate, as in the dense
    step); Adam's sparse twin is the lazy SparseAdam.
    """
    params = list(parameters)
    if sparse:
        return _sparse(name, params, lr)
    if name == "adagrad":
        # fused: ~7 ms a step for the MMN tower against ~47 ms unfused.
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
    raise ModelConfigError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def _sparse(name: str, params: list, lr: float) -> torch.optim.Optimizer:
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    if name == "adagrad-tf":
        return torch.optim.Adagrad(
            params, lr=lr, initial_accumulator_value=TF_INITIAL_ACCUMULATOR, eps=TF_EPSILON
        )
    if name == "adam":
        return torch.optim.SparseAdam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ModelConfigError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
