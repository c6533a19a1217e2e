"""Building blocks shared by the models: field embeddings, a plain MLP, a parameter cache."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")


class FieldEmbedding(nn.Module):
    """Embeds F hashed fields, each with its own `buckets` rows of one table, and concatenates them."""

    def __init__(self, n_fields: int, buckets: int, dim: int) -> None:
        super().__init__()
        self.n_fields, self.buckets, self.dim = n_fields, buckets, dim
        self.table = nn.Embedding(n_fields * buckets, dim)
        nn.init.normal_(self.table.weight, std=0.01)

    @property
    def out_dim(self) -> int:
        return self.n_fields * self.dim

    def fields(self, ids: Tensor) -> Tensor:
        """Per-field embeddings: (B, F) ids -> (B, F, E)."""
        # The first row of each field's block, made per call rather than kept as a buffer: a
        # model built on the meta device and loaded with assign=True has nothing left to fill.
        offsets = torch.arange(
            0, self.n_fields * self.buckets, self.buckets, device=ids.device
        )  # (F,)
        return self.table(ids + offsets)

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


class ParameterCache:
    """Values derived from a module's parameters (composed weights), kept until one changes.

    Every in-place update (an optimizer step, load_state_dict's copy) bumps a tensor's
    `_version`, and load_state_dict(assign=True) replaces the Parameter objects: either
    empties the cache, as does clear() (a module calls it from train()). The Parameters
    seen are held, so a new one can never pass for an old one by reusing its id.

    >>> layer = nn.Linear(2, 2)
    >>> cache = ParameterCache(layer)
    >>> first = cache.get("w2", lambda: layer.weight * 2)
    >>> cache.get("w2", lambda: layer.weight * 3) is first
    True
    >>> with torch.no_grad():
    ...     _ = layer.weight.add_(1.0)
    >>> cache.get("w2", lambda: layer.weight * 3) is first
    False
    """

    def __init__(self, module: nn.Module, *, size: int | None = None) -> None:
        # Weakly: the module holds its cache, and a cycle between them would keep a dropped
        # model's weights and compositions alive until a full garbage collection, which
        # tensor allocations never trigger (an evaluator reached gigabytes that way).
        self._module = weakref.ref(module)
        self.size = size  # entries kept, least recently used dropped first (None: all)
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._seen: list[tuple[nn.Parameter, int]] = []

    def clear(self) -> None:
        self._values.clear()
        self._seen = []

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value under key, computed (without autograd) if absent or stale."""
        module = self._module()
        assert module is not None, "a ParameterCache outlived its module"
        params = list(module.parameters())
        if len(params) != len(self._seen) or any(
            p is not q or p._version != v for p, (q, v) in zip(params, self._seen, strict=True)
        ):
            self._values.clear()
            self._seen = [(p, p._version) for p in params]
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        with torch.no_grad():
            value = self._values[key] = compute()
        if self.size is not None and len(self._values) > self.size:
            self._values.popitem(last=False)
        return value
