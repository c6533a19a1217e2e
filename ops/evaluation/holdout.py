"""Scoring a trained snapshot on a later window of a log, with the log's final labels.

The rows of [start, end) of a CriteoSearchData-format file become one mini-batch with
their final labels (kind `final`); a learner restored from a snapshot scores them by
p_ctr * p_cvr (the estimate of P(conversion | click) that ESMM-style losses fit, see
ops.evaluation.offline), and the figures come per conversion type and per display scenario next to
the overall ones: n, positives, exact AUC, log loss and calibration (sum of predicted
over sum of actual).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from model.batch import Batch
from model.scoring import ScoreRule, probability
from ops.evaluation.domains import average_auc, by_domain, domain_masks
from ops.metrics import EPS, calibration, exact_auc, log_loss
from simulator.criteo_search import SearchColumns
from streaming.minibatch import MiniBatch


def window_rows(cols: SearchColumns, start: int, end: int) -> MiniBatch:
    """The clicks of [start, end) of loaded log columns, with their final labels."""
    pick = np.flatnonzero((cols.click_ts >= start) & (cols.click_ts < end))
    return MiniBatch(
        partition=0,
        seq=0,
        watermark=end,
        end=False,
        impression_ids=[str(i) for i in cols.impression_id[pick]],
        user_ids=["-"] * len(pick),
        ts=cols.click_ts[pick].astype(np.int64),
        label_ts=cols.click_ts[pick].astype(np.int64),
        click=np.ones(len(pick), dtype=np.uint8),
        conversion=cols.sale[pick].astype(np.uint8),
        kinds=["final"] * len(pick),
        conv_types=[cols.types[i] for i in cols.type_index[pick]],
        scenarios=[cols.scenarios[i] for i in cols.scenario_index[pick]],
        features={name: list(values[pick]) for name, values in cols.features.items()},
    )


class Scorer(Protocol):
    """What scores rows: a model and its encoding of rows (an ops.training OnlineLearner)."""

    @property
    def model(self) -> nn.Module: ...

    def batch(self, rows: MiniBatch) -> Batch:
        """The tensor batch of rows."""

    @property
    def score_rule(self) -> ScoreRule:
        """How the model is scored (`model.scoring`)."""


def score(learner: Scorer, rows: MiniBatch) -> np.ndarray:
    """The score of every row (`model.scoring`: p_cvr if click-only, else p_ctr * p_cvr), by
    the learner's model in eval mode."""
    learner.model.eval()
    with torch.no_grad():
        return probability(learner.model(learner.batch(rows)), learner.score_rule).numpy()


def figures(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """n, positives, exact AUC, log loss and calibration of one slice.

    >>> f = figures(np.array([0, 1, 0, 1]), np.array([0.2, 0.6, 0.4, 0.8]))
    >>> f["auc"], f["calibration"]
    (1.0, 1.0)
    """
    labels = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    return {
        "n": len(labels),
        "positives": int(labels.sum()),
        "auc": exact_auc(labels, p),
        "logloss": log_loss(labels, p),
        "calibration": calibration(labels, p),
    }


def domain_report(
    labels: np.ndarray, scores: np.ndarray, conv_types: Sequence[str], scenarios: Sequence[str]
) -> dict:
    """Overall figures, per conversion type and per display scenario, and the mean AUC over both
    (`ops.evaluation.domains`)."""
    table = by_domain(labels, scores, domain_masks(conv_types, scenarios), figures)
    return {
        "overall": figures(labels, scores),
        "avg_domain_auc": average_auc(table, "auc"),
        **table,
    }
