"""MMN: the fast grouped path equals the literal auto-masking; parameter sets; single requests."""

from __future__ import annotations

import pytest
import torch

from model import zoo
from model.batch import Batch
from model.config import ModelConfig
from model.errors import ModelConfigError
from model.masked import MaskedTower
from model.mmn import MMN, CommonTower

N_T, N_S, F = 3, 4, 3
CONFIG = ModelConfig(n_fields=F, buckets=50, n_types=N_T, n_scenarios=N_S, hidden=(8, 4))


def _batch(conv_type: list[int], scenario: list[int], seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n = len(conv_type)
    click = (torch.rand(n, generator=g) < 0.8).float()
    return Batch.of(
        torch.randint(0, 50, (n, F), generator=g),
        torch.tensor(conv_type),
        torch.tensor(scenario),
        click=click,
        conversion=click * (torch.rand(n, generator=g) < 0.4).float(),
        weight=torch.rand(n, generator=g) + 0.5,
    )


def _fast_and_reference() -> tuple[MMN, MMN]:
    torch.manual_seed(1)
    fast = MMN(CONFIG)
    with torch.no_grad():  # random domain parts, so that every term matters
        for p in fast.parameters():
            p.normal_(std=0.3)
    reference = MMN(CONFIG, cvr=MaskedTower)
    reference.load_state_dict(fast.state_dict())
    return fast, reference


EVERY_DOMAIN = [(t, s) for t in range(N_T) for s in range(N_S)] * 2 + [(1, 2), (0, 3), (2, 0)]
BATCHES = {
    "every domain present": EVERY_DOMAIN,
    "absent domains": [(2, 1), (0, 1), (2, 1), (2, 3), (0, 1)],
    "single row": [(1, 3)],
}


@pytest.mark.parametrize("domains", BATCHES.values(), ids=BATCHES.keys())
def test_fast_path_equals_literal_auto_masking_in_outputs_and_gradients(domains) -> None:
    fast, reference = _fast_and_reference()
    batch = _batch([t for t, _ in domains], [s for _, s in domains])
    loss = zoo.get("mmn").loss
    out_fast, out_ref = fast(batch), reference(batch)
    assert torch.allclose(out_fast.cvr, out_ref.cvr, atol=1e-5, rtol=0)
    assert torch.allclose(out_fast.ctr, out_ref.ctr, atol=1e-5, rtol=0)
    loss(out_fast, batch).backward()
    loss(out_ref, batch).backward()
    ref_params = dict(reference.named_parameters())
    for name, p in fast.named_parameters():
        assert (p.grad - ref_params[name].grad).abs().max() < 1e-5, name


def test_only_the_domains_present_receive_gradients() -> None:
    fast, _ = _fast_and_reference()
    batch = _batch([2, 2, 0], [1, 3, 1])
    zoo.get("mmn").loss(fast(batch), batch).backward()
    layer = fast.cvr.layers[0]
    assert layer.type_w.grad[1].abs().max() == 0 and layer.type_w.grad[2].abs().max() > 0
    assert layer.scen_w.grad[0].abs().max() == 0 and layer.scen_w.grad[2].abs().max() == 0
    assert layer.scen_w.grad[3].abs().max() > 0


def test_param_sets_are_types_plus_scenarios_plus_one() -> None:
    spec = zoo.get("mmn")
    assert spec.param_sets(CONFIG) == N_T + N_S + 1
    assert spec.datasets(CONFIG) == 1
    model = spec.build(CONFIG)
    for layer in model.cvr.layers:  # one base, N_T type and N_S scenario parts per layer
        assert layer.base_w.dim() == 2
        assert layer.type_w.shape[0] + layer.scen_w.shape[0] + 1 == N_T + N_S + 1
    assert zoo.get("mmn_common").param_sets(CONFIG) == 1
    assert zoo.get("mmn_nodw").param_sets(CONFIG) == N_T + N_S + 1


def test_single_request_equals_the_batch_path_and_follows_training() -> None:
    fast, _ = _fast_and_reference()
    batch = _batch([t for t, _ in EVERY_DOMAIN], [s for _, s in EVERY_DOMAIN], seed=3)
    optimizer = torch.optim.Adagrad(fast.parameters(), lr=0.1)
    for _ in range(2):  # the second round checks the composed-tower cache sees the update
        with torch.no_grad():
            full = fast(batch)
        for i in range(len(batch)):
            one = fast.request(batch.ids[i], int(batch.conv_type[i]), int(batch.scenario[i]))
            assert one.cvr.shape == (1,)
            assert torch.allclose(one.cvr, full.cvr[i : i + 1], atol=1e-5, rtol=0)
            assert torch.allclose(one.ctr, full.ctr[i : i + 1], atol=1e-5, rtol=0)
        optimizer.zero_grad()
        zoo.get("mmn").loss(fast(batch), batch).backward()
        optimizer.step()


def test_common_parameters_ablation_ignores_the_domain() -> None:
    torch.manual_seed(0)
    model = MMN(CONFIG, cvr=CommonTower)
    batch = _batch([0, 1, 2], [3, 2, 1])
    same_rows = Batch.of(
        batch.ids, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    )
    assert torch.equal(model(batch).cvr, model(same_rows).cvr)
    one = model.request(batch.ids[1], 1, 2)
    assert torch.allclose(one.cvr, model(batch).cvr[1:2], atol=1e-6)


def test_no_dynamic_weight_ablation_is_mmn_with_the_esmm_loss() -> None:
    from model.losses import esmm_loss, mmn_loss

    assert zoo.get("mmn_nodw").loss is esmm_loss
    assert zoo.get("mmn").loss is mmn_loss


def test_tower_widths_must_suit_grouped_matmul() -> None:
    config = ModelConfig(n_fields=2, n_types=2, n_scenarios=2, hidden=(6,))
    with pytest.raises(ModelConfigError, match="multiples of 4"):
        MMN(config)
