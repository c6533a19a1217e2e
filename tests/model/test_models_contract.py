"""The contract every registered model honours (one parametrised test over model.zoo.names()).

Shapes: model(batch) -> Logits with (B,) finite CTR and CVR logits. Learning: trained with
its own registered loss, it overfits a tiny batch (loss to under half its start and
the clicked rows' conversions ranked above their non-conversions, AUC >= 0.9). Snapshots: it survives
save_model / load_model with identical predictions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import zoo
from model.batch import Batch
from model.config import ModelConfig
from model.snapshot import load_model, save_model

CONFIG = ModelConfig(n_fields=4, buckets=64, n_types=3, n_scenarios=3, hidden=(16, 16, 8, 8))
ROWS = 24


def _tiny_batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    click = torch.ones(ROWS)
    click[::4] = 0.0
    conversion = click * (torch.arange(ROWS) % 3 == 1).float()
    return Batch.of(
        torch.randint(0, 64, (ROWS, 4), generator=g),
        torch.arange(ROWS) % 3,
        (torch.arange(ROWS) // 3) % 3,
        click=click,
        conversion=conversion,
    )


@pytest.mark.parametrize("name", zoo.names())
def test_model_contract(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    spec = zoo.get(name)
    model = spec.build(CONFIG)
    batch = _tiny_batch()

    logits = model(batch)
    assert logits.ctr.shape == (ROWS,) and logits.cvr.shape == (ROWS,)
    assert torch.isfinite(logits.ctr).all() and torch.isfinite(logits.cvr).all()
    assert spec.param_sets(CONFIG) >= 0 and spec.datasets(CONFIG) >= 1

    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(300):
        optimizer.zero_grad()
        loss = spec.loss(model(batch), batch)
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    model.eval()
    with torch.no_grad():
        trained = model(batch)
        final = spec.loss(trained, batch).item()
    assert final < first / 2, f"{name} did not overfit: loss {first:.3f} -> {final:.3f}"
    clicked = batch.click == 1
    cvr, z = trained.cvr[clicked], batch.conversion[clicked]
    pos, neg = cvr[z == 1].unsqueeze(1), cvr[z == 0].unsqueeze(0)
    auc = ((pos > neg).float() + 0.5 * (pos == neg).float()).mean().item()
    assert auc >= 0.9, f"{name} ranks the tiny batch's conversions at AUC {auc:.3f}"

    path = tmp_path / f"{name}.pt"
    save_model(path, model, name=name, config=CONFIG, extra={"test": True})
    loaded = load_model(path)
    assert loaded.name == name
    with torch.no_grad():
        again = loaded.model(batch)
    assert torch.equal(again.ctr, trained.ctr) and torch.equal(again.cvr, trained.cvr)


def _nudged(name: str) -> torch.nn.Module:
    """A registered model whose every parameter is moved off its initial value (the per-type
    and per-scenario parts start at zero or one, where a wrong composition would not show)."""
    torch.manual_seed(1)
    model = zoo.get(name).build(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _scores(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(batch)
    return logits.ctr.detach().clone(), logits.cvr.detach().clone()


def _same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", zoo.names())
def test_cached_compositions_score_bit_for_bit_like_composing_per_call(name: str) -> None:
    model, batch = _nudged(name), _tiny_batch()
    model.eval()
    composed_per_call = _scores(model, batch)  # autograd on: nothing is cached
    with torch.no_grad():
        served, served_again = _scores(model, batch), _scores(model, batch)
    assert _same(served, composed_per_call) and _same(served_again, composed_per_call)

    # A step taken in eval mode changes the parameters: the cache must notice.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    zoo.get(name).loss(model(batch), batch).backward()
    optimizer.step()
    stepped = _scores(model, batch)
    with torch.no_grad():
        served_after_step = _scores(model, batch)
    assert _same(served_after_step, stepped)
    assert not _same(served_after_step, served), f"{name}: the step changed nothing"

    # train() empties it; so does replacing the parameters (load_state_dict(assign=True)).
    model.train()
    model.eval()
    with torch.no_grad():
        assert _same(_scores(model, batch), stepped)
    other = _nudged(name)
    other.eval()
    model.load_state_dict({k: v * 1.5 for k, v in model.state_dict().items()}, assign=True)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert _same(_scores(model, batch), _scores(other, batch))
