"""The project's one set of exact binary-classification metrics (AUC, PR-AUC, log loss, calibration).

Every AUC the project reports comes from `exact_auc` (ranks, ties averaged): river's
streaming ROCAUC uses a few thresholds and is far off at low base rates. All functions take
0/1 labels and predicted probabilities (or any scores, for the ranking metrics) as arrays.

A leaf of `ops` beside `ops.errors`: it imports nothing else of the project, so training
(progressive validation), evaluation and research all score with it.
"""

from __future__ import annotations

import math

import numpy as np

# Predictions are clipped into [EPS, 1 - EPS] where they are made, so a log loss never sees 0 or 1.
EPS = 1e-7


def exact_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from ranks, ties averaged (Mann-Whitney); NaN when only one class is present.

    >>> exact_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> exact_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.9]))
    0.75
    """
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = midranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of values, each run of equal values getting its mean rank.

    >>> midranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """PR-AUC as average precision (sum over thresholds of recall gain x precision); NaN without positives.

    The step-wise form, not the trapezoid (which is optimistic); scikit-learn's
    `average_precision_score` computes the same.

    >>> average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.8333333333333333
    """
    labels = np.asarray(labels, dtype=np.float64)
    n_pos = labels.sum()
    if n_pos == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    ordered, hits = np.asarray(scores, dtype=np.float64)[order], labels[order]
    # One threshold per distinct score: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), len(ordered) - 1]
    tps = np.cumsum(hits)[last]
    precision = tps / (last + 1)
    recall_gain = np.diff(np.r_[0.0, tps]) / n_pos
    return float(np.sum(recall_gain * precision))


def log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities p; NaN for no rows.

    >>> round(log_loss(np.array([1, 0]), np.array([0.5, 0.5])), 6)
    0.693147
    """
    labels = np.asarray(labels, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(labels) == 0:
        return math.nan
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def calibration(labels: np.ndarray, p: np.ndarray) -> float:
    """Sum of predicted over sum of actual conversions (1 is calibrated); NaN without positives.

    >>> calibration(np.array([0, 1, 0, 1]), np.array([0.2, 0.6, 0.4, 0.8]))
    1.0
    """
    positives = float(np.sum(labels))
    return float(np.sum(np.asarray(p, dtype=np.float64)) / positives) if positives else math.nan
