"""Tests of the STAR baseline: partitioned normalisation, star-topology FCN, auxiliary network."""

from __future__ import annotations

import pytest
import torch
from small_batches import CONFIG, batch

from model import zoo
from model.baselines.routing import SCENARIOS, TYPES
from model.baselines.star import STAR
from model.batch import Batch


def perturbed(model: STAR) -> STAR:
    """The model with every domain-specific parameter moved off its neutral initial value."""
    with torch.no_grad():
        for p in model.partitions.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def reference_cvr(model: STAR, b: Batch, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """Row by row, straight from the STAR paper's formulas, with the given PN statistics."""
    x = model.embed(b.ids)
    shared, eps = model.shared, model.norm.eps
    out = []
    for row, d in zip(x, model.domains.of(b).tolist(), strict=True):
        own = model.partitions[d]
        h = (shared.scale * own.scale) * (row - mean) / torch.sqrt(var + eps) + (
            shared.shift + own.shift
        )
        for i, (ws, wd) in enumerate(zip(shared.weights, own.weights, strict=True)):
            h = h @ (ws * wd) + shared.biases[i] + own.biases[i]
            h = torch.relu(h) if i < len(shared.weights) - 1 else h
        aux = model.aux(torch.cat([row, model.indicator.weight[d]]))
        out.append(h + aux)
    return torch.cat(out)


@pytest.mark.parametrize("axis", [TYPES, SCENARIOS])
def test_at_eval_each_row_uses_moving_statistics_and_its_own_domains_parameters(axis) -> None:
    torch.manual_seed(0)
    model = perturbed(STAR(CONFIG, axis))
    model(batch(seed=1))  # one training step's statistics move the moving averages
    model.eval()
    b = batch()
    logits = model(b)
    assert logits.ctr.shape == logits.cvr.shape == (12,)
    expected = reference_cvr(model, b, model.norm.running_mean, model.norm.running_var)
    torch.testing.assert_close(logits.cvr, expected)


def test_in_training_pn_uses_the_batch_statistics_and_updates_the_moving_ones() -> None:
    torch.manual_seed(0)
    model = perturbed(STAR(CONFIG, TYPES))
    b = batch()
    x = model.embed(b.ids).detach()
    logits = model(b)
    mean, var = x.mean(0), x.var(0, unbiased=False)
    torch.testing.assert_close(logits.cvr, reference_cvr(model, b, mean, var))
    torch.testing.assert_close(model.norm.running_mean, 0.1 * mean)
    torch.testing.assert_close(model.norm.running_var, 0.9 + 0.1 * x.var(0, unbiased=True))


def test_a_domains_pn_scale_changes_only_that_domains_rows() -> None:
    torch.manual_seed(0)
    model = perturbed(STAR(CONFIG, TYPES)).eval()
    b = batch()
    before = model(b).cvr
    with torch.no_grad():
        model.partitions[1].scale.mul_(3.0)
    changed = model(b).cvr != before
    assert torch.equal(changed, b.conv_type == 1)


def test_every_domain_starts_as_the_shared_network() -> None:
    torch.manual_seed(0)
    model = STAR(CONFIG, TYPES).eval()
    with torch.no_grad():  # silence the auxiliary network, which reads the domain indicator
        model.aux.net[-1].weight.zero_()
        model.aux.net[-1].bias.zero_()
    b = batch()
    logits = [model(Batch.of(b.ids, torch.full((12,), d), b.scenario)).cvr for d in range(3)]
    torch.testing.assert_close(logits[0], logits[1])
    torch.testing.assert_close(logits[0], logits[2])


def test_a_domains_rows_touch_only_that_domains_parameters() -> None:
    torch.manual_seed(0)
    model = STAR(CONFIG, TYPES)
    model(batch(conv_type=2)).cvr.sum().backward()
    for d in (0, 1):
        assert all(p.grad is None for p in model.partitions[d].parameters())
    assert all(p.grad is not None for p in model.partitions[2].parameters())
    assert all(p.grad is not None for p in model.shared.parameters())
    indicator_grad = model.indicator.weight.grad
    assert indicator_grad[:2].abs().sum() == 0 and indicator_grad[2].abs().sum() > 0


def test_specs_count_one_parameter_set_and_one_dataset_per_domain() -> None:
    for name, n in (("star_type", CONFIG.n_types), ("star_scen", CONFIG.n_scenarios)):
        spec = zoo.get(name)
        assert spec.param_sets(CONFIG) == n and spec.datasets(CONFIG) == n
