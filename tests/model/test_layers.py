"""model/layers.py: a model that caches compositions of its parameters is freed as soon as
it is dropped, without waiting for a garbage collection."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from model import zoo
from model.batch import Batch
from model.config import ModelConfig

CONFIG = ModelConfig(n_fields=3, buckets=50, n_types=4, n_scenarios=3, hidden=(8, 4))


@pytest.mark.parametrize("name", ["mmn", "mmn_dw_clip", "star_type"])
def test_a_dropped_model_with_cached_compositions_is_freed_at_once(name: str) -> None:
    model = zoo.get(name).build(CONFIG)
    model.eval()
    batch = Batch.of(
        torch.randint(0, 50, (6, 3)),
        torch.tensor([0, 1, 2, 3, 1, 0]),
        torch.tensor([0, 1, 2, 0, 1, 2]),
    )
    with torch.inference_mode():
        model(batch)  # fills the composition caches of a model scoring in eval mode
    dropped = [weakref.ref(module) for module in model.modules()]  # the towers too
    was_enabled = gc.isenabled()
    gc.disable()  # only reference counting: a cycle through a cache would keep it alive
    try:
        del model
        assert [ref() for ref in dropped if ref() is not None] == []
    finally:
        if was_enabled:
            gc.enable()
