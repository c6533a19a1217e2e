"""Tests of model.baselines.routing: grouping rows by domain and putting them back."""

from __future__ import annotations

import pytest
import torch

from model.baselines.routing import DomainGroups
from model.errors import ModelConfigError


def test_map_runs_each_present_domain_on_its_own_rows_and_restores_batch_order() -> None:
    domain = torch.tensor([3, 0, 3, 3, 0])
    groups = DomainGroups(domain, n_domains=5)
    seen: dict[int, list[float]] = {}

    def part(d: int, rows: torch.Tensor) -> torch.Tensor:
        seen[d] = rows.flatten().tolist()
        return rows * 0 + d

    x = torch.arange(5.0).unsqueeze(1)
    out = groups.restore(groups.map(part, groups.sort(x)))
    assert seen == {0: [1.0, 4.0], 3: [0.0, 2.0, 3.0]}
    assert out.flatten().tolist() == domain.float().tolist()


def test_gradient_flows_back_to_the_original_rows() -> None:
    x = torch.arange(4.0, requires_grad=True)
    groups = DomainGroups(torch.tensor([1, 0, 1, 0]), n_domains=2)
    out = groups.restore(groups.map(lambda d, rows: rows * (d + 2), groups.sort(x.unsqueeze(1))))
    out.sum().backward()
    assert x.grad.tolist() == [3.0, 2.0, 3.0, 2.0]


def test_an_index_beyond_the_vocabulary_is_refused_with_its_value() -> None:
    with pytest.raises(ModelConfigError, match=r"\[0, 2\).*to 2"):
        DomainGroups(torch.tensor([0, 2]), n_domains=2)
