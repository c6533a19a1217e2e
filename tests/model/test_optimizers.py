"""The optimizer factory: TensorFlow's Adagrad against a hand computation, and every name builds."""

from __future__ import annotations

import math

import pytest
import torch

from model.optimizers import OPTIMIZERS, make_optimizer
from ops.errors import ConfigError
from ops.evaluation.offline import OfflineConfig


def test_tf_adagrad_first_two_steps_match_a_hand_computation() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.0]))
    opt = make_optimizer("adagrad-tf", [p], lr=0.1)
    g1 = [0.5, -0.02, 3.0]
    p.grad = torch.tensor(g1)
    opt.step()
    # TensorFlow: acc = 0.1 + g^2; x -= lr * g / (sqrt(acc) + 1e-7)
    acc = [0.1 + g * g for g in g1]
    want = [
        x - 0.1 * g / (math.sqrt(a) + 1e-7)
        for x, g, a in zip([1.0, -2.0, 0.0], g1, acc, strict=True)
    ]
    assert p.tolist() == pytest.approx(want, rel=1e-6)
    g2 = [0.1, 0.1, -1.0]
    p.grad = torch.tensor(g2)
    opt.step()
    acc = [a + g * g for a, g in zip(acc, g2, strict=True)]
    want = [x - 0.1 * g / (math.sqrt(a) + 1e-7) for x, g, a in zip(want, g2, acc, strict=True)]
    assert p.tolist() == pytest.approx(want, rel=1e-6)


def test_pytorch_adagrad_first_step_is_lr_times_sign() -> None:
    # The contrast that matters for Eq. 3: a zero start makes the first step scale-free.
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
    opt = make_optimizer("adagrad", [p], lr=0.1)
    p.grad = torch.tensor([0.001, -50.0])
    opt.step()
    assert p.tolist() == pytest.approx([0.9, 1.1], rel=1e-6)


def test_every_optimizer_builds_and_steps() -> None:
    for name in OPTIMIZERS:
        p = torch.nn.Parameter(torch.ones(2))
        opt = make_optimizer(name, [p], lr=0.01)
        p.grad = torch.ones(2)
        opt.step()
        assert (p < 1).all(), name


def test_offline_config_rejects_an_unknown_optimizer() -> None:
    with pytest.raises(ConfigError, match="optimizer"):
        OfflineConfig(models=("mmn",), optimizer="adagrad-torch")


def test_sparse_tf_adagrad_moves_touched_rows_as_the_dense_step_does() -> None:
    dense, sparse = (torch.nn.Embedding(5, 2, sparse=s) for s in (False, True))
    sparse.weight.data.copy_(dense.weight.data)
    before = dense.weight.detach().clone()
    ids = torch.tensor([1, 3, 3])
    for table, flag in ((dense, False), (sparse, True)):
        opt = make_optimizer("adagrad-tf", [table.weight], lr=0.1, sparse=flag)
        table(ids).sum().backward()
        opt.step()
    assert torch.allclose(dense.weight, sparse.weight, atol=1e-6)
    assert torch.equal(sparse.weight[[0, 2, 4]], before[[0, 2, 4]])
    # Row 3 got gradient 2 per coordinate: 0.1 * 2 / (sqrt(0.1 + 4) + 1e-7).
    step = 0.1 * 2 / (math.sqrt(4.1) + 1e-7)
    assert (before[3] - sparse.weight[3]).tolist() == pytest.approx([step, step], rel=1e-5)
