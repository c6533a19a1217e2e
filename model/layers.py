"""Building blocks shared by the models: field embeddings and a plain MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FieldEmbedding(nn.Module):
    """Embeds F hashed fields, each with its own `buckets` rows of one table, and concatenates them."""

    offsets: Tensor  # (F,) buffer: the first row of each field's block

    def __init__(self, n_fields: int, buckets: int, dim: int) -> None:
        super().__init__()
        self.n_fields, self.dim = n_fields, dim
        self.table = nn.Embedding(n_fields * buckets, dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.register_buffer("offsets", torch.arange(n_fields) * buckets, persistent=False)

    @property
    def out_dim(self) -> int:
        return self.n_fields * self.dim

    def fields(self, ids: Tensor) -> Tensor:
        """Per-field embeddings: (B, F) ids -> (B, F, E)."""
        return self.table(ids + self.offsets)

    def forward(self, ids: Tensor) -> Tensor:
        return self.fields(ids).flatten(1)  # (B, F*E)


class MLP(nn.Module):
    """Linear+ReLU layers of the given widths, then (optionally) a linear 1-unit output."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], *, out_dim: int | None = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            in_dim = width
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
