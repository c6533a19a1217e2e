"""Tests of the MMoE baseline: shared experts, one gate and one tower per task (type or scenario)."""

from __future__ import annotations

import pytest
import torch
from small_batches import CONFIG, batch

from model import zoo
from model.baselines.mmoe import MMoE, MMoEConfig
from model.baselines.routing import SCENARIOS, TYPES
from model.batch import Batch
from model.errors import ModelConfigError


def reference_cvr(model: MMoE, b: Batch) -> torch.Tensor:
    """Row by row: the row's own task's gate over the shared experts, then its own tower."""
    x = model.embed(b.ids)
    out = []
    for row, task in zip(x, model.tasks.of(b).tolist(), strict=True):
        experts = torch.stack([e(row) for e in model.experts])  # (K, D)
        gate = torch.softmax(model.gates[task](row), dim=0)
        out.append(model.towers[task](gate @ experts))
    return torch.cat(out)


@pytest.mark.parametrize("axis", [TYPES, SCENARIOS])
def test_each_row_goes_through_its_own_tasks_gate_and_tower(axis) -> None:
    torch.manual_seed(0)
    model = MMoE(CONFIG, axis)
    b = batch()
    logits = model(b)
    assert logits.ctr.shape == logits.cvr.shape == (12,)
    torch.testing.assert_close(logits.cvr, reference_cvr(model, b))


def test_a_tasks_rows_touch_only_that_tasks_gate_and_tower() -> None:
    torch.manual_seed(0)
    model = MMoE(CONFIG, TYPES)
    model(batch(conv_type=1)).cvr.sum().backward()
    for task in (0, 2):
        assert all(p.grad is None for p in model.gates[task].parameters())
        assert all(p.grad is None for p in model.towers[task].parameters())
    assert all(p.grad is not None for p in model.gates[1].parameters())
    assert all(p.grad is not None for e in model.experts for p in e.parameters())


def test_the_scenario_variant_reads_the_scenario_not_the_type() -> None:
    torch.manual_seed(0)
    model = MMoE(CONFIG, SCENARIOS).eval()
    b = batch()
    retyped = Batch.of(b.ids, (b.conv_type + 1) % CONFIG.n_types, b.scenario)
    rescened = Batch.of(b.ids, b.conv_type, 1 - b.scenario)
    assert torch.equal(model(b).cvr, model(retyped).cvr)
    assert not torch.allclose(model(b).cvr, model(rescened).cvr)


def test_specs_count_one_parameter_set_per_task_and_one_dataset() -> None:
    for name, sets in (("mmoe_type", CONFIG.n_types), ("mmoe_scen", CONFIG.n_scenarios)):
        spec = zoo.get(name)
        assert spec.param_sets(CONFIG) == sets and spec.datasets(CONFIG) == 1


def test_experts_that_leave_no_tower_layer_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="expert_layers=4"):
        MMoE(CONFIG, TYPES, MMoEConfig(expert_layers=4))
