"""The optimizers a model can be trained with, by name: one factory for training, offline and benches.

`model_optimizer` builds every optimizer a model trains with (the online learner's model
and the auxiliary delay model alike): a dense one over its parameters and, with sparse
embedding tables, the sparse twin over those, stepped together as one `CombinedOptimizer`.

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
(docs/results.md, "MMN as the paper ran it").

>>> import torch
>>> p = torch.nn.Parameter(torch.tensor([1.0]))
>>> opt = make_optimizer("adagrad-tf", [p], lr=0.1)
>>> p.grad = torch.tensor([0.5])
>>> opt.step()
>>> round(p.item(), 6)  # 1 - 0.1 * 0.5 / (sqrt(0.1 + 0.25) + 1e-7)
0.915485
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from model.errors import ModelConfigError
from model.layers import FieldEmbedding

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


def sparse_tables(model: nn.Module) -> list[nn.Embedding]:
    """The model's hashed-feature embedding tables, switched to sparse gradients.

    An embedding table's gradient for a mini-batch is non-zero only on the rows of the
    batch's ids; as a sparse tensor, an optimizer that takes it updates those rows alone, so
    a step costs what its rows cost instead of a pass over the whole table.
    """
    tables = [m.table for m in model.modules() if isinstance(m, FieldEmbedding)]
    for table in tables:
        table.sparse = True
    return tables


class CombinedOptimizer:
    """A model's optimizers stepped as one (torchrec's CombinedOptimizer in small).

    dense: over the parameters with dense gradients; sparse: over the embedding tables with
    sparse gradients (None if there are none).
    """

    def __init__(
        self, dense: torch.optim.Optimizer, sparse: torch.optim.Optimizer | None = None
    ) -> None:
        self.dense, self.sparse = dense, sparse

    @property
    def parts(self) -> list[torch.optim.Optimizer]:
        """The optimizers it steps: dense, then sparse if any."""
        return [self.dense] if self.sparse is None else [self.dense, self.sparse]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.parts:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.parts:
            optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """{"dense": the dense part's state, "sparse": the sparse part's (None without)}."""
        return {
            "dense": self.dense.state_dict(),
            "sparse": None if self.sparse is None else self.sparse.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a `state_dict()`."""
        self.dense.load_state_dict(state["dense"])
        if self.sparse is not None:
            self.sparse.load_state_dict(state["sparse"])

    def set_lr(self, lr: float) -> None:
        """Apply a new learning rate to every parameter group of every part."""
        for optimizer in self.parts:
            for group in optimizer.param_groups:
                group["lr"] = lr


def model_optimizer(name: str, model: nn.Module, *, lr: float, sparse: bool) -> CombinedOptimizer:
    """Optimizer `name` (one of OPTIMIZERS) over model at learning rate lr.

    sparse: the model's embedding tables take sparse gradients and the sparse twin of
    `name` (`sparse_tables`); every other parameter takes `name` itself.

    >>> from model.layers import MLP
    >>> class Tiny(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.embedding, self.mlp = FieldEmbedding(2, 10, 4), MLP(8, (4,))
    >>> opt = model_optimizer("adam", Tiny(), lr=0.1, sparse=True)
    >>> [type(o).__name__ for o in opt.parts]
    ['Adam', 'SparseAdam']
    >>> opt.set_lr(0.5); [g["lr"] for o in opt.parts for g in o.param_groups]
    [0.5, 0.5]
    """
    tables = sparse_tables(model) if sparse else []
    sparse_ids = {id(t.weight) for t in tables}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    return CombinedOptimizer(
        make_optimizer(name, dense, lr=lr),
        make_optimizer(name, [t.weight for t in tables], lr=lr, sparse=True) if tables else None,
    )
