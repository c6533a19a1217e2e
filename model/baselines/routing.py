"""Routing rows of a mixed batch to per-domain parts, for the multi-task and multi-domain baselines.

A baseline optimises one domain dimension: conversion types (`TYPES`) or display scenarios
(`SCENARIOS`). Its per-domain parts (gates, towers, experts, star weights) run only on the rows of
their own domain: the rows are sorted by domain once, cut into contiguous groups, and each present
domain's part runs on its group. No row ever touches another domain's parameters, and domains
absent from the batch get no gradient at all.

Sorting and restoring go through `index_select`, whose backward is an `index_add_` (fast on CPU);
stacked per-domain parameters indexed by `x[idx]` would back-propagate through `index_put_`, ~30x
slower (measured on a 2-core CPU).

>>> import torch
>>> groups = DomainGroups(torch.tensor([2, 0, 2, 1]), n_domains=3)
>>> groups.sizes, groups.present
([1, 1, 2], [0, 1, 2])
>>> x = groups.sort(torch.tensor([[20.0], [0.0], [21.0], [10.0]]))
>>> x.flatten().tolist()
[0.0, 10.0, 20.0, 21.0]
>>> y = groups.map(lambda d, rows: rows + 100 * d, x)
>>> groups.restore(y).flatten().tolist()
[220.0, 0.0, 221.0, 110.0]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from model.batch import Batch
from model.config import ModelConfig
from model.errors import ModelConfigError


@dataclass(frozen=True, kw_only=True)
class DomainAxis:
    """Which domain dimension a baseline models: how to read it from a batch and its size.

    name: "type" or "scenario" (used in descriptions and error messages).
    of: the (B,) domain index of each row of a batch.
    size: the number of domains (the vocabulary capacity) in a model config.
    """

    name: str
    of: Callable[[Batch], Tensor]
    size: Callable[[ModelConfig], int]


TYPES = DomainAxis(name="type", of=lambda b: b.conv_type, size=lambda c: c.n_types)
SCENARIOS = DomainAxis(name="scenario", of=lambda b: b.scenario, size=lambda c: c.n_scenarios)


class DomainGroups:
    """The rows of one batch sorted into contiguous per-domain groups."""

    def __init__(self, domain: Tensor, n_domains: int) -> None:
        if domain.numel() and (int(domain.min()) < 0 or int(domain.max()) >= n_domains):
            raise ModelConfigError(
                f"domain index out of range [0, {n_domains}): got values from {int(domain.min())} "
                f"to {int(domain.max())}; build the model with a vocabulary capacity that covers "
                "every index the features produce"
            )
        self.order = torch.argsort(domain, stable=True)
        self.inverse = torch.argsort(self.order)
        self.sizes: list[int] = torch.bincount(domain, minlength=n_domains).tolist()
        self.present = [d for d, n in enumerate(self.sizes) if n]

    def sort(self, x: Tensor) -> Tensor:
        """Rows of x (in batch order) in domain order."""
        return x.index_select(0, self.order)

    def restore(self, x: Tensor) -> Tensor:
        """Rows of x (in domain order) back in batch order."""
        return x.index_select(0, self.inverse)

    def map(self, part: Callable[..., Tensor], *xs: Tensor) -> Tensor:
        """Concatenated `part(d, *rows_of_d)` over present domains d; each x is in domain order."""
        chunks = [x.split(self.sizes) for x in xs]
        return torch.cat([part(d, *(c[d] for c in chunks)) for d in self.present])
