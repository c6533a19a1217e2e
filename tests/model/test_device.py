"""Devices: the per-group fallback of MMN's grouped matmul, `--device`, snapshots that load anywhere.

The fallback (`model.mmn.segment_mm`) is what MMN runs where `torch._grouped_mm` does not
take float32 (CUDA): here it is forced on the CPU and compared with the literal
auto-masking reference. The CUDA tests run only where torch finds a GPU.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from learner_rows import learner_config, make_rows

import model.mmn
from model import zoo
from model.snapshot import on_cpu
from ops.errors import ConfigError
from ops.options.device import resolve_device
from ops.training.learner import OnlineLearner
from tests.model.test_mmn import BATCHES, _batch, _fast_and_reference

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _stream(batches: int) -> list:
    return [make_rows(b * 40, 40) for b in range(batches)]


def _compare_with_reference(domains, device: str) -> None:
    fast, reference = _fast_and_reference()
    fast.to(device)
    batch = _batch([t for t, _ in domains], [s for _, s in domains])
    loss = zoo.get("mmn").loss
    out_fast, out_ref = fast(batch.to(device)), reference(batch)
    assert torch.allclose(out_fast.cvr.cpu(), out_ref.cvr, atol=1e-5, rtol=0)
    assert torch.allclose(out_fast.ctr.cpu(), out_ref.ctr, atol=1e-5, rtol=0)
    loss(out_fast, batch.to(device)).backward()
    loss(out_ref, batch).backward()
    ref_params = dict(reference.named_parameters())
    for name, p in fast.named_parameters():
        assert (p.grad.cpu() - ref_params[name].grad).abs().max() < 1e-5, name


@pytest.fixture
def no_grouped_mm(monkeypatch):
    """MMN with its per-group fallback on the CPU too; torch._grouped_mm fails if called."""
    monkeypatch.setattr(model.mmn, "GROUPED_MM_DEVICES", frozenset())

    def refuse(*args, **kwargs):
        raise AssertionError("torch._grouped_mm called although the fallback was forced")

    monkeypatch.setattr(torch, "_grouped_mm", refuse)


@pytest.mark.parametrize("domains", BATCHES.values(), ids=BATCHES.keys())
def test_fallback_equals_literal_auto_masking_in_outputs_and_gradients(
    domains, no_grouped_mm
) -> None:
    _compare_with_reference(domains, "cpu")


def test_segment_mm_is_grouped_mm_with_empty_groups() -> None:
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(7, 8, generator=g), torch.randn(4, 8, 4, generator=g)
    offs = torch.tensor([0, 3, 3, 7], dtype=torch.int32)  # groups 0 and 2 empty
    expected = torch._grouped_mm(h, w, offs=offs)
    assert torch.allclose(model.mmn.segment_mm(h, w, offs), expected, atol=1e-6)
    got = model.mmn.segment_mm(h[:0], w, torch.zeros(4, dtype=torch.int32))
    assert got.shape == (0, 4)


def test_learner_trains_the_same_with_the_fallback(monkeypatch) -> None:
    """A learner's steps with the fallback end where those with _grouped_mm end."""
    config = learner_config(model="mmn")
    grouped = OnlineLearner(config)
    for rows in _stream(4):
        grouped.step(rows)
    monkeypatch.setattr(model.mmn, "GROUPED_MM_DEVICES", frozenset())
    fallback = OnlineLearner(config)
    for rows in _stream(4):
        fallback.step(rows)
    got = dict(fallback.model.named_parameters())
    for name, p in grouped.model.named_parameters():
        assert torch.allclose(p, got[name], atol=1e-5), name


def test_device_option_resolves_and_refuses_cuda_without_a_gpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
        return
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device cuda: torch finds no CUDA device"):
        resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPU")
@pytest.mark.parametrize(
    "argv",
    [
        [
            "train",
            "--run",
            "r",
            "--bootstrap",
            "127.0.0.1:1",
            "--device",
            "cuda",
            "--db",
            "sqlite:///registry.db",
            "--snapshot-dir",
            "snapshots",
        ],  # fmt: skip
        ["bench", "model", "--models", "esmm", "--device", "cuda"],
    ],
)
def test_cuda_without_a_gpu_exits_2_with_one_line(argv, tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device cuda" in lines[0], done.stderr


def test_checkpoint_tensors_are_on_the_cpu() -> None:
    learner = OnlineLearner(learner_config(model="mmn"), "cpu")
    for rows in _stream(2):
        learner.step(rows)
    state = learner.state()
    tensors = _tensors(state)
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert on_cpu({"a": [torch.ones(1)]})["a"][0].device.type == "cpu"


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    return []


@CUDA
@pytest.mark.parametrize("domains", BATCHES.values(), ids=BATCHES.keys())
def test_cuda_fast_path_equals_literal_auto_masking_on_the_cpu(domains) -> None:
    _compare_with_reference(domains, "cuda")


@CUDA
def test_cuda_learner_snapshot_resumes_on_the_cpu_and_back() -> None:
    config = learner_config(model="mmn")
    on_gpu, on_host = OnlineLearner(config, "cuda"), OnlineLearner(config, "cpu")
    batches = _stream(6)
    for rows in batches[:3]:
        on_gpu.step(rows)
        on_host.step(rows)
    state = on_gpu.state()
    assert all(t.device.type == "cpu" for t in _tensors(state))
    resumed = OnlineLearner.from_state(state, "cpu")
    back = OnlineLearner.from_state(on_host.state(), "cuda")
    for rows in batches[3:]:
        resumed.step(rows)
        back.step(rows)
    got = dict(back.model.named_parameters())
    for name, p in resumed.model.named_parameters():
        assert np.allclose(p.detach().numpy(), got[name].detach().cpu().numpy(), atol=1e-4), name
