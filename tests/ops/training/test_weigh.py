"""The weigh step: the rows a method trains, its weights, and its state (the delay model)
round trip."""

from __future__ import annotations

import numpy as np
import torch
from learner_rows import learner_config, make_rows

from ops.training.featurize import Featurize
from ops.training.weigh import Weigh


def _batch(start: int, n: int, kind: str):
    rows = make_rows(start, n, kind=kind)
    return Featurize.fresh(learner_config()).batch(rows), np.asarray(rows.kinds, dtype=object)


def test_es_dfm_trains_the_main_model_on_all_but_the_final_rows() -> None:
    weigh = Weigh.fresh(learner_config(method="es-dfm"), lr=0.01)
    assert weigh.aux is not None and len(weigh.optimizers()) == 2
    batch, kinds = _batch(0, 8, "negative")
    kinds[:3] = "final"
    main, main_kinds, aux = weigh.select(batch, kinds)
    assert len(main) == 5 and "final" not in main_kinds.tolist()
    assert aux is not None and aux.dp.shape == (5,)
    assert torch.equal(main.ids, batch.ids[3:])


def test_vanilla_weighs_new_clicks_1_and_copies_click_terms_0() -> None:
    weigh = Weigh.fresh(learner_config(method="vanilla"), lr=0.01)
    assert weigh.aux is None and weigh.optimizers() == [] and weigh.state() is None
    batch, kinds = _batch(0, 4, "negative")
    kinds[1] = "delayed-positive"
    weight, click_weight = weigh.weights(batch, kinds, torch.full((4,), 0.5), None)
    assert weight.tolist() == [1.0] * 4 and click_weight.tolist() == [1.0, 0.0, 1.0, 1.0]


def test_its_state_round_trips_and_the_delay_model_continues_exactly() -> None:
    config = learner_config(method="defer")
    weigh = Weigh.fresh(config, lr=0.05)
    weigh.select(*_batch(0, 64, "final"))  # the delay model learns from final rows
    restored = Weigh.fresh(config, lr=0.05)
    restored.load_state(weigh.state())
    assert weigh.aux is not None and restored.aux is not None
    for step in (weigh, restored):
        step.select(*_batch(64, 64, "final"))
    for a, b in zip(weigh.aux.model.parameters(), restored.aux.model.parameters(), strict=True):
        assert torch.equal(a, b)
    weigh.set_lr(0.5)
    assert [g["lr"] for o in weigh.optimizers() for g in o.param_groups] == [0.5, 0.5]
