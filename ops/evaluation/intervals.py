"""Paired bootstrap intervals of Table 3's average-AUC differences against a reference model.

Table 3 ranks models by their average AUC over the type and scenario columns, averaged over
seeds. A difference between two models is a statistic of one test set and a few seeds, so
each model gets a 95% interval of its difference to the reference (`mmn`):

- Rows: a Poisson bootstrap of the test rows (every row drawn Poisson(1) times, the usual
  approximation of resampling n of n), the same draw for every model in a replicate
  (paired: the models are compared on the same resampled rows).
- Seeds: in each replicate each model's seeds are resampled with replacement too, so the
  interval holds the seed-to-seed spread as well as the test set's.
- Statistic: per replicate, each model's average AUC (mean over its resampled seeds of the
  per-domain weighted AUC averaged over the domains with both classes), minus the
  reference's. The interval is the 2.5th to 97.5th percentile over replicates; a
  difference whose interval holds 0 is not significant at 5%.

AUC with integer row weights is computed exactly from one sort per (model, seed, domain):
a positive of weight w scores w times the weighted negatives below it, plus half of those
tied with it, the same ties rule as `ops.metrics.exact_auc`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

REPLICATES = 1000
CHUNK = 100  # replicates per block: bounds the (replicates x rows) arrays in memory
_NO_CI = (math.nan, math.nan)


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of scores with row weights, (R,) for weights (R, n); NaN where a class has weight 0.

    No rows at all (a domain absent from the test split) is NaN too, like one class.

    >>> y, s = np.array([0, 1, 0, 1]), np.array([0.1, 0.5, 0.5, 0.9])
    >>> weighted_auc(y, s, np.array([[1, 1, 1, 1], [2, 1, 0, 0]])).tolist()
    [0.875, 1.0]
    >>> weighted_auc(y[:0], s[:0], np.ones((2, 0))).tolist()
    [nan, nan]
    """
    labels = np.asarray(labels, dtype=bool)
    if len(labels) == 0:  # reduceat needs at least one group
        return np.full(np.shape(weights)[0], np.nan)
    order = np.argsort(scores, kind="mergesort")
    y, s, w = labels[order], np.asarray(scores)[order], np.asarray(weights, dtype=np.float64)
    w = w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    neg = np.where(y, 0.0, w)
    pos = np.where(y, w, 0.0)
    neg_group = np.add.reduceat(neg, starts, axis=1)  # (R, groups)
    pos_group = np.add.reduceat(pos, starts, axis=1)
    below = np.cumsum(neg_group, axis=1) - neg_group  # negatives strictly below each group
    wins = (pos_group * (below + 0.5 * neg_group)).sum(axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def average_auc(
    labels: np.ndarray, scores: np.ndarray, domains: Sequence[np.ndarray], weights: np.ndarray
) -> np.ndarray:
    """Per replicate, the mean over domains (boolean row masks) of the weighted AUC, (R,).

    Domains without an AUC in a replicate (no rows, or one class) are left out of its mean;
    a replicate where no domain has one is NaN.
    """
    per_domain = np.stack([weighted_auc(labels[m], scores[m], weights[:, m]) for m in domains])
    defined = ~np.isnan(per_domain)
    counts = defined.sum(axis=0)
    sums = np.where(defined, per_domain, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def paired_intervals(
    labels: np.ndarray,
    scores: Mapping[str, Sequence[np.ndarray]],
    domains: Sequence[np.ndarray],
    reference: str,
    *,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> dict[str, dict]:
    """Each model's average-AUC difference to reference and its 95% paired-bootstrap interval.

    labels: (n,) test labels. scores: model -> one (n,) score array per seed. domains: the
    boolean row masks of the Table 3 columns (types and scenarios).
    Returns model -> {"auc_diff_vs_mmn", "ci": [lo, hi], "significant"}.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in scores}
    for start in range(0, replicates, CHUNK):
        size = min(CHUNK, replicates - start)
        weights = rng.poisson(1.0, size=(size, n)).astype(np.float64)
        for name, runs in scores.items():
            per_seed = np.stack([average_auc(labels, s, domains, weights) for s in runs])
            picks = rng.integers(0, len(runs), size=(size, len(runs)))
            draws[name].append(np.take_along_axis(per_seed.T, picks, axis=1).mean(axis=1))
    ones = np.ones((1, n))
    point = {
        name: float(np.mean([average_auc(labels, s, domains, ones)[0] for s in runs]))
        for name, runs in scores.items()
    }
    ref = np.concatenate(draws[reference])
    out = {}
    for name in scores:
        diff = np.concatenate(draws[name]) - ref
        diff = diff[~np.isnan(diff)]  # replicates where no domain had both classes
        lo, hi = (float(x) for x in np.percentile(diff, [2.5, 97.5])) if len(diff) else _NO_CI
        out[name] = {
            "auc_diff_vs_mmn": point[name] - point[reference],
            "ci": [lo, hi],
            "significant": not (lo <= 0.0 <= hi) and not math.isnan(lo),
        }
    return out
