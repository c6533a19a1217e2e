"""Progressive validation: the trainer scores every mini-batch before it learns from it.

The predictions are those of the forward pass of the training step itself, taken before
the optimizer moves the weights, so each example is scored by a model that has not yet
seen its label. Labels are those known at training time: under the fake-negative policy a
conversion that comes late was first counted as a negative, and that negative is scored
here as one (the A/B evaluator, `mmn evaluate`, counts final labels instead). Only clicked
rows count (CVR on clicks, as in the paper's Table 3).

Per domain (overall, each conversion type, each display scenario):

- log loss since the trainer started: a river running mean (`river.stats.Mean`, the
  accumulator of river's LogLoss) fed the per-example losses of each batch at once (river's
  LogLoss object costs ~9 us per example and domain here, more than a training step's
  share);
- exact AUC (ties averaged) over the last `window` rows: river's ROCAUC approximates with
  a few thresholds and is far off at low base rates; computed by `metrics()`, when the
  figures are shown or stored, not by `update()` after every step;

and a river ADWIN drift detector on the per-example log loss of all rows: the event time
(watermark) of each detected change is kept (`drift_points`).

>>> import numpy as np
>>> pv = ProgressiveValidation(window=4)
>>> pv.update(np.array([1, 0, 0, 1]), np.array([0.9, 0.2, 0.4, 0.6]), ["a"] * 4, ["s"] * 4, 100)
>>> m = pv.metrics()["domains"]
>>> m["overall"]["n"], m["overall"]["auc"], round(m["overall"]["log_loss"], 4)
(4, 1.0, 0.3375)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from river import drift, stats

from ops.metrics import EPS, exact_auc

MAX_DRIFT_POINTS = 100


class RollingWindow:
    """The last `size` (label, prediction) pairs of one domain."""

    def __init__(self, size: int) -> None:
        self.labels = np.zeros(size, dtype=np.int8)
        self.p = np.zeros(size, dtype=np.float64)
        self.count = 0  # rows ever added
        self.size = size
        self._auc: float | None = None  # of the rows now held; None: not computed since

    def add(self, labels: np.ndarray, p: np.ndarray) -> None:
        labels, p = labels[-self.size :], p[-self.size :]
        slots = (self.count + np.arange(len(labels))) % self.size
        self.labels[slots], self.p[slots] = labels, p
        self.count += len(labels)
        if len(labels):
            self._auc = None

    def auc(self) -> float:
        """The exact AUC of the rows held, computed when asked (a sort of up to `size` rows:
        after every step it cost the trainer 13% of its CPU) and kept until a row is added."""
        if self._auc is None:
            filled = min(self.count, self.size)
            self._auc = exact_auc(self.labels[:filled], self.p[:filled])
        return self._auc


class ProgressiveValidation:
    """Running quality of a trainer's predictions before each step, per domain."""

    def __init__(self, window: int = 10_000, drift_delta: float = 0.002) -> None:
        self.window = window
        self.losses: dict[str, stats.Mean] = {}
        self.rolling: dict[str, RollingWindow] = {}
        self.adwin = drift.ADWIN(delta=drift_delta)
        self.drift_points: list[int] = []

    def update(
        self,
        labels: np.ndarray,
        p: np.ndarray,
        conv_types: Sequence[str],
        scenarios: Sequence[str],
        watermark: int | None,
    ) -> None:
        """Add one batch's clicked rows: labels as known now, predictions before the step."""
        labels = np.asarray(labels, dtype=np.int8)
        p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
        loss = -(labels * np.log(p) + (1 - labels) * np.log1p(-p))
        self._add("overall", labels, p, loss)
        for prefix, values in (("type", conv_types), ("scenario", scenarios)):
            column = np.asarray(values)
            for value in dict.fromkeys(values):
                m = column == value
                self._add(f"{prefix}={value}", labels[m], p[m], loss[m])
        drifted = False
        for x in loss.tolist():
            self.adwin.update(x)
            drifted = drifted or self.adwin.drift_detected
        if drifted and watermark is not None:
            self.drift_points = [*self.drift_points, int(watermark)][-MAX_DRIFT_POINTS:]

    def _add(self, domain: str, labels: np.ndarray, p: np.ndarray, loss: np.ndarray) -> None:
        if domain not in self.losses:
            self.losses[domain] = stats.Mean()
            self.rolling[domain] = RollingWindow(self.window)
        self.losses[domain].update_many(loss)
        self.rolling[domain].add(labels, p)

    def metrics(self) -> dict[str, Any]:
        """Per domain: rows seen, mean log loss so far, AUC of the last `window` rows (None: one
        class only); the drift points. Plain JSON (it is stored with every snapshot)."""
        domains = {}
        for domain, mean in self.losses.items():
            auc = self.rolling[domain].auc()
            domains[domain] = {
                "n": int(mean.n),
                "log_loss": float(mean.get()),
                "auc": None if math.isnan(auc) else auc,
            }
        return {"window": self.window, "drift_points": list(self.drift_points), "domains": domains}
