"""Tests of the PLE baseline: two CGC levels, per-task experts/gates/towers, tasks = type or scenario."""

from __future__ import annotations

import pytest
import torch
from small_batches import CONFIG, batch

from model import zoo
from model.baselines.mixture import mix
from model.baselines.ple import PLE, PLEConfig
from model.baselines.routing import SCENARIOS, TYPES
from model.batch import Batch
from model.errors import ModelConfigError


def reference_cvr(model: PLE, b: Batch) -> torch.Tensor:
    """Row by row, as the PLE paper draws it, with the shared gate over the row's own task."""
    x = model.embed(b.ids)
    out = []
    for row, task in zip(x.unsqueeze(1), model.tasks.of(b).tolist(), strict=True):
        task_h = shared_h = row  # (1, D)
        for level in model.levels:
            own = [e(task_h) for e in level.specific[task]]
            shared = [e(shared_h) for e in level.shared]
            experts = torch.stack(own + shared, dim=1)  # (1, K+S, W)
            next_task = mix(level.task_gates[task](task_h), experts)
            if level.shared_gate is not None:
                shared_h = mix(level.shared_gate(shared_h), experts)
            task_h = next_task
        out.append(model.towers[task](task_h))
    return torch.cat(out).squeeze(1)


@pytest.mark.parametrize("axis", [TYPES, SCENARIOS])
def test_each_row_follows_its_own_tasks_progressive_extraction(axis) -> None:
    torch.manual_seed(0)
    model = PLE(CONFIG, axis)
    b = batch()
    logits = model(b)
    assert logits.ctr.shape == logits.cvr.shape == (12,)
    torch.testing.assert_close(logits.cvr, reference_cvr(model, b))


def test_two_levels_and_only_the_lower_one_has_a_shared_gate() -> None:
    model = PLE(CONFIG, TYPES)
    assert len(model.levels) == 2
    assert model.levels[0].shared_gate is not None and model.levels[1].shared_gate is None
    assert model.levels[0].shared[0][0].out_features == CONFIG.hidden[0]
    assert model.levels[1].specific[2][0][0].out_features == CONFIG.hidden[1]


def test_a_tasks_rows_touch_only_that_tasks_experts_gates_and_tower() -> None:
    torch.manual_seed(0)
    model = PLE(CONFIG, TYPES)
    model(batch(conv_type=2)).cvr.sum().backward()
    for level in model.levels:
        for task in (0, 1):
            assert all(p.grad is None for p in level.specific[task].parameters())
            assert all(p.grad is None for p in level.task_gates[task].parameters())
        assert all(p.grad is not None for p in level.specific[2].parameters())
        assert all(p.grad is not None for p in level.shared.parameters())
    assert all(p.grad is None for t in (0, 1) for p in model.towers[t].parameters())


def test_specs_count_one_parameter_set_per_task_and_one_dataset() -> None:
    for name, sets in (("ple_type", CONFIG.n_types), ("ple_scen", CONFIG.n_scenarios)):
        spec = zoo.get(name)
        assert spec.param_sets(CONFIG) == sets and spec.datasets(CONFIG) == 1


def test_levels_that_leave_no_tower_layer_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="levels=4"):
        PLE(CONFIG, TYPES, PLEConfig(levels=4))
