"""Pieces shared by the mixture-of-experts baselines (MMoE, PLE): an expert and a gated mix."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def expert(in_dim: int, widths: tuple[int, ...]) -> nn.Module:
    """An expert: Linear+ReLU layers of the given widths (no output unit)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers)


def mix(gate_logits: Tensor, experts: Tensor) -> Tensor:
    """Softmax-gated sum of expert outputs: (b, K) logits, (b, K, D) outputs -> (b, D)."""
    return torch.einsum("bk,bkd->bd", torch.softmax(gate_logits, dim=1), experts)
