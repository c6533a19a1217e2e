"""Sparse embedding steps: the tables of a model that take sparse gradients, and their optimizer.

An embedding table's gradient for a mini-batch is non-zero only on the rows of the batch's
ids; with `nn.Embedding(sparse=True)` it is a sparse tensor, and an optimizer that takes
sparse gradients updates those rows alone, so a step costs what its rows cost instead of
a pass over the whole table.
"""

from __future__ import annotations

import torch

from model.layers import FieldEmbedding
from model.optimizers import make_optimizer


def sparse_tables(model: torch.nn.Module) -> list[torch.nn.Embedding]:
    """The model's hashed-feature embedding tables, switched to sparse gradients."""
    tables = [m.table for m in model.modules() if isinstance(m, FieldEmbedding)]
    for table in tables:
        table.sparse = True
    return tables


def sparse_optimizer(name: str, parameters: list, lr: float) -> torch.optim.Optimizer:
    """The sparse-gradient twin of optimizer `name` (model.optimizers.OPTIMIZERS)."""
    return make_optimizer(name, parameters, lr=lr, sparse=True)
