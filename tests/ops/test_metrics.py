"""The one set of exact metrics against pair counting and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss

from ops.metrics import average_precision, calibration, exact_auc, log_loss


def test_exact_auc_matches_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = rng.integers(0, 20, 300).astype(float)  # many ties
    pos, neg = scores[labels][:, None], scores[~labels][None, :]
    pairs = ((pos > neg) + 0.5 * (pos == neg)).mean()
    assert math.isclose(exact_auc(labels, scores), pairs, rel_tol=1e-12)
    assert math.isnan(exact_auc(np.zeros(4), np.arange(4.0)))


@pytest.mark.parametrize("ties", [False, True])
def test_every_metric_equals_scikit_learn(ties: bool) -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(2_000) < 0.05).astype(int)
    p = np.clip(rng.beta(1, 15, 2_000) + 0.05 * labels, 1e-7, 1 - 1e-7)
    if ties:
        p = np.round(p, 2).clip(1e-7, 1 - 1e-7)
    assert abs(exact_auc(labels, p) - roc_auc_score(labels, p)) < 1e-12
    assert abs(average_precision(labels, p) - average_precision_score(labels, p)) < 1e-12
    assert abs(log_loss(labels, p) - sk_log_loss(labels, p)) < 1e-12
    assert calibration(labels, p) == pytest.approx(p.sum() / labels.sum(), rel=1e-15)


def test_undefined_slices_are_nan() -> None:
    assert math.isnan(average_precision(np.zeros(3), np.ones(3)))
    assert math.isnan(calibration(np.zeros(3), np.ones(3)))
    assert math.isnan(log_loss(np.zeros(0), np.zeros(0)))
