"""A tiny problem shape and random mixed-domain batches for the baselines' own tests."""

from __future__ import annotations

import torch

from model.batch import Batch
from model.config import ModelConfig

CONFIG = ModelConfig(n_fields=4, buckets=64, n_types=3, n_scenarios=2, hidden=(16, 8, 8, 4))


def batch(n: int = 12, seed: int = 0, conv_type: int | None = None) -> Batch:
    """n random rows of CONFIG's shape; every row of one type when conv_type is given."""
    g = torch.Generator().manual_seed(seed)
    types = torch.randint(0, CONFIG.n_types, (n,), generator=g)
    return Batch.of(
        torch.randint(0, CONFIG.buckets, (n, CONFIG.n_fields), generator=g),
        types if conv_type is None else torch.full((n,), conv_type),
        torch.randint(0, CONFIG.n_scenarios, (n,), generator=g),
    )
