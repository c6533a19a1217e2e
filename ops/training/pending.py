"""The learner's gather step: new rows held back until a step's worth of them is gathered.

A sparse stream's mini-batches of a few rows would each pay for a whole optimizer step, so
consecutive mini-batches are gathered until they hold `min_step_rows` rows (or the stream
ends) before one step. The gathered rows are the step's state: they travel in checkpoints,
so a resumed run steps exactly as an uninterrupted one.

>>> import numpy as np, torch
>>> from model.batch import Batch
>>> pending = PendingRows(min_step_rows=3)
>>> pending.add(Batch.of(torch.zeros(2, 1, dtype=torch.int64), torch.zeros(2), torch.zeros(2)),
...            np.array(["negative", "positive"], dtype=object))
>>> len(pending), pending.ready(end=False), pending.ready(end=True)
(2, False, True)
>>> PendingRows.from_state(pending.state(), min_step_rows=3).take()[1].tolist()
['negative', 'positive']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from model.batch import Batch


class PendingRows:
    """Rows (tensor batches and their example kinds) gathered for the next optimizer step."""

    def __init__(self, min_step_rows: int) -> None:
        self.min_step_rows = min_step_rows
        self._pending: list[tuple[Batch, np.ndarray]] = []

    def __len__(self) -> int:
        """Rows gathered."""
        return sum(len(kinds) for _, kinds in self._pending)

    def add(self, batch: Batch, kinds: np.ndarray) -> None:
        """Gather the rows of batch, whose example kinds are kinds."""
        self._pending.append((batch, kinds))

    def ready(self, end: bool) -> bool:
        """Whether to step now: rows are gathered, min_step_rows of them or the stream ended."""
        gathered = len(self)
        return bool(gathered) and (gathered >= self.min_step_rows or end)

    def take(self) -> tuple[Batch, np.ndarray] | None:
        """The gathered rows as one batch and their kinds, forgotten here (None if none)."""
        taken = self._joined()
        self._pending = []
        return taken

    def _joined(self) -> tuple[Batch, np.ndarray] | None:
        if not self._pending:
            return None
        batches, kinds = zip(*self._pending, strict=True)
        return concat_batches(batches), np.concatenate(kinds)

    def clear(self) -> None:
        """Forget the gathered rows without stepping on them."""
        self._pending = []

    def state(self) -> dict[str, Any] | None:
        """The gathered rows as one batch's tensors and a list of kinds (None if none)."""
        joined = self._joined()
        if joined is None:
            return None
        batch, kinds = joined
        return {"batch": dict(vars(batch)), "kinds": kinds.tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, min_step_rows: int) -> PendingRows:
        """The step whose `state()` this is."""
        pending = cls(min_step_rows)
        if state is not None:
            pending.add(Batch(**state["batch"]), np.asarray(state["kinds"], dtype=object))
        return pending


def concat_batches(batches: Sequence[Batch]) -> Batch:
    """The rows of batches, in order, as one batch (the batch itself if it is alone)."""
    if len(batches) == 1:
        return batches[0]
    return Batch(**{name: torch.cat([vars(b)[name] for b in batches]) for name in vars(batches[0])})
