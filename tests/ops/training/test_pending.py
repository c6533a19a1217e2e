"""The gather step: rows held back until a step's worth, and its state round trip."""

from __future__ import annotations

import numpy as np
import torch
from learner_rows import learner_config, make_rows

from ops.training.featurize import Featurize
from ops.training.pending import PendingRows


def test_rows_are_held_until_min_step_rows_or_the_end() -> None:
    pending = PendingRows(min_step_rows=50)
    assert not pending.ready(end=True) and pending.take() is None and pending.state() is None
    featurize = Featurize.fresh(learner_config())
    for start in (0, 30):
        pending.add(featurize.batch(make_rows(start, 30)), np.array(["negative"] * 30))
        assert len(pending) == start + 30
    assert pending.ready(end=False)
    taken = pending.take()
    assert taken is not None and len(taken[0]) == 60 and len(pending) == 0


def test_its_state_round_trips() -> None:
    featurize = Featurize.fresh(learner_config())
    pending = PendingRows(min_step_rows=100)
    pending.add(featurize.batch(make_rows(0, 7)), np.array(["negative"] * 7, dtype=object))
    pending.add(featurize.batch(make_rows(7, 5)), np.array(["positive"] * 5, dtype=object))
    restored = PendingRows.from_state(pending.state(), min_step_rows=100)
    assert len(restored) == 12 and not restored.ready(end=False)
    (batch, kinds), (again, again_kinds) = pending.take(), restored.take()  # type: ignore[misc]
    assert kinds.tolist() == again_kinds.tolist() == ["negative"] * 7 + ["positive"] * 5
    for a, b in zip(vars(batch).values(), vars(again).values(), strict=True):
        assert torch.equal(a, b)
    assert PendingRows.from_state(None, min_step_rows=1).state() is None
