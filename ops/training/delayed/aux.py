"""The auxiliary delay model of ES-DFM and DEFER, learnt online beside the main model.

Two logits per click from its hashed features: `dp`, the probability that the click is a
delayed positive (converts after the observation window O, within A), over all clicks;
`rn`, the probability that a click seen as a negative at O is a real negative (never
converts within A). Their labels come from the rows the joiner emits at click + A with
`LabelConfig.final_copy`:

| row kind | dp label | rn label |
|---|---|---|
| delayed-final (converted after O) | 1 | 0 |
| final, conversion 0 (a real negative) | 0 | 1 |
| final, conversion 1 (converted within O) | 0 | - |

so every click teaches each head once, and always at the same age: had the delayed
positives been learnt when they convert, the model would see them up to A earlier than the
real negatives, and over-estimate delays (measured on the synthetic log: calibration
1.2-1.5 for ES-DFM and DEFER). The model is small (its own embeddings of
`dim` per field, one hidden layer) and its embedding updates are sparse like the main
model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.layers import MLP, FieldEmbedding
from model.optimizers import model_optimizer


@dataclass(frozen=True)
class DelayPrediction:
    """The auxiliary model's probabilities for a batch: dp and rn, each (B,), detached."""

    dp: Tensor
    rn: Tensor

    def rows(self, pick: Tensor) -> DelayPrediction:
        """The predictions of the rows at indices pick."""
        return DelayPrediction(dp=self.dp[pick], rn=self.rn[pick])


def delay_targets(kinds: np.ndarray, conversion: np.ndarray) -> tuple[Tensor, ...]:
    """(dp label, dp mask, rn label, rn mask) of a batch's rows, float32 (B,) each.

    >>> t = delay_targets(np.array(["delayed-final", "final", "final", "delayed-positive"]),
    ...                   np.array([1, 0, 1, 1]))
    >>> [x.tolist() for x in t]
    [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    """
    delayed = kinds == "delayed-final"
    final = kinds == "final"
    real_negative = final & (np.asarray(conversion) == 0)
    as_tensor = [
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        for x in (delayed, delayed | final, real_negative, delayed | real_negative)
    ]
    return tuple(as_tensor)


class DelayModel(nn.Module):
    """Hashed field ids (B, F) -> logits (B, 2): delayed positive, real negative."""

    def __init__(self, n_fields: int, buckets: int, dim: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(n_fields, buckets, dim)
        self.mlp = MLP(self.embedding.out_dim, (hidden,), out_dim=2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.mlp(self.embedding(ids))  # (B, 2)


class DelayLearner:
    """The delay model and its optimizer (the main learner's: sparse for the embeddings, dense
    for the MLP, from `model.optimizers`)."""

    def __init__(
        self, n_fields: int, buckets: int, *, nominal_rows: int, optimizer: str, lr: float
    ) -> None:
        self.model = DelayModel(n_fields, buckets)
        self.nominal_rows = nominal_rows
        self.optimizer = model_optimizer(optimizer, self.model, lr=lr, sparse=True)

    def predict(self, ids: Tensor) -> DelayPrediction:
        """dp and rn probabilities of rows, without a gradient."""
        with torch.no_grad():
            p = torch.sigmoid(self.model(ids))
        return DelayPrediction(dp=p[:, 0], rn=p[:, 1])

    def learn(self, ids: Tensor, kinds: np.ndarray, conversion: np.ndarray) -> int:
        """One step on the rows whose delay is known (see the table above); how many there were."""
        dp, dp_mask, rn, rn_mask = delay_targets(kinds, conversion)
        known = (dp_mask + rn_mask) > 0
        n = int(known.sum())
        if n == 0:
            return 0
        pick = torch.from_numpy(np.flatnonzero(known.numpy()))
        logits = self.model(ids[pick])
        loss = (
            dp_mask[pick]
            * F.binary_cross_entropy_with_logits(logits[:, 0], dp[pick], reduction="none")
            + rn_mask[pick]
            * F.binary_cross_entropy_with_logits(logits[:, 1], rn[pick], reduction="none")
        ).sum() / max(n, self.nominal_rows)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return n

    def state(self) -> dict[str, Any]:
        """Weights and optimizer states (snapshots keep them: ES-DFM and DEFER need them)."""
        return {
            "model": self.model.state_dict(),
            **self.optimizer.state_dict(),  # "dense" and "sparse"
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a `state()`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state)
