"""DeLong against brute-force structural components, BH, SRM, and the confidence sequence's coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from ops.evaluation.assignment import Split
from ops.evaluation.stats import (
    auc_interval,
    benjamini_hochberg,
    components,
    confidence_sequence,
    paired_difference,
    srm_p_value,
    unpaired_difference,
)
from ops.metrics import exact_auc


def _psi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DeLong's kernel for every (positive, negative) pair: 1 above, 1/2 tied, 0 below."""
    return (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])


def _brute(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = _psi(scores[labels == 1], scores[labels == 0])
    return pairs.mean(axis=1), pairs.mean(axis=0)  # v10 per positive, v01 per negative


def _fixed_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    labels = (rng.random(400) < 0.2).astype(int)
    a = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: ties inside and across classes
    b = np.round(0.6 * a + rng.normal(labels * 0.3, 0.8), 1)
    return labels, a, b


def test_components_equal_brute_force_pair_counts() -> None:
    labels, a, _ = _fixed_data()
    c = components(labels, a)
    v10, v01 = _brute(labels, a)
    np.testing.assert_allclose(c.v10, v10, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.v01, v01, rtol=0, atol=1e-12)
    assert c.auc == pytest.approx(exact_auc(labels, a), abs=1e-12)
    m, n = len(v10), len(v01)
    assert c.variance == pytest.approx(v10.var(ddof=1) / m + v01.var(ddof=1) / n, rel=1e-12)


def test_paired_variance_and_p_value_equal_brute_force() -> None:
    labels, a, b = _fixed_data()
    a10, a01 = _brute(labels, a)
    b10, b01 = _brute(labels, b)
    m, n = len(a10), len(a01)
    # var(A - B) = [s10_aa + s10_bb - 2 s10_ab] / m + [s01_aa + s01_bb - 2 s01_ab] / n
    var = np.var(a10 - b10, ddof=1) / m + np.var(a01 - b01, ddof=1) / n
    diff = a10.mean() - b10.mean()
    result = paired_difference(labels, a, b)
    assert result.diff == pytest.approx(diff, abs=1e-12)
    assert result.se**2 == pytest.approx(var, rel=1e-10)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(abs(diff) / math.sqrt(var)), rel=1e-9)
    lo, hi = result.ci
    assert hi - lo == pytest.approx(2 * 1.959963984540054 * math.sqrt(var), rel=1e-9)


def test_unpaired_variances_add() -> None:
    labels, a, b = _fixed_data()
    first, second = slice(0, 200), slice(200, 400)
    result = unpaired_difference(labels[first], a[first], labels[second], b[second])
    var = (
        components(labels[first], a[first]).variance
        + components(labels[second], b[second]).variance
    )
    assert result.se**2 == pytest.approx(var, rel=1e-12)
    auc, lo, hi = auc_interval(labels, a)
    assert lo < auc < hi


def test_benjamini_hochberg_against_a_hand_computation() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    # p_(i) * 8 / i, then the running minimum from the largest rank down.
    raw = [x * 8 / (i + 1) for i, x in enumerate(p)]
    expected = [min(raw[i:]) for i in range(8)]
    shuffled = [5, 0, 7, 2, 1, 6, 4, 3]
    adjusted = benjamini_hochberg([p[i] for i in shuffled])
    assert adjusted == pytest.approx([expected[i] for i in shuffled], rel=1e-12)


def test_srm_passes_a_fair_split_and_fails_a_broken_one() -> None:
    split = Split({"control": 1, "treatment": 1}, salt="srm")
    arms = [split.arm(f"user-{i}") for i in range(20_000)]
    fair = [arms.count("control"), arms.count("treatment")]
    assert srm_p_value(fair, [1, 1]) > 0.01
    # A broken pipeline that loses a tenth of the treatment users.
    broken = [fair[0], int(fair[1] * 0.9)]
    assert srm_p_value(broken, [1, 1]) < 1e-6
    # The same counts against a 60/40 split are a mismatch too.
    assert srm_p_value(fair, [0.6, 0.4]) < 1e-6


def _loss_differences(rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    """Per-example log-loss of arm A minus arm B; the arms differ only when shift != 0."""
    p = rng.beta(1, 20, n)
    y = rng.random(n) < p
    logit = np.log(p / (1 - p))
    qa = 1 / (1 + np.exp(-(logit - shift + rng.normal(0, 0.5, n))))
    qb = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, n))))

    def loss(q: np.ndarray) -> np.ndarray:
        return -(y * np.log(q) + ~y * np.log1p(-q))

    return loss(qa) - loss(qb)


def test_confidence_sequence_coverage_over_200_streams() -> None:
    rng = np.random.default_rng(2024)
    ever_excluded = sum(
        bool(confidence_sequence(_loss_differences(rng, 20_000, 0.0)).excludes_zero().any())
        for _ in range(200)
    )
    assert ever_excluded <= 12  # at most 6% of 200 streams at level 95%


def test_confidence_sequence_finds_a_real_difference_before_the_end() -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        # Arm A's logits are shifted down by 1: under-predicting, it has the higher log loss.
        cs = confidence_sequence(_loss_differences(rng, 20_000, 1.0))
        hits = np.flatnonzero(cs.excludes_zero())
        assert len(hits) and hits[0] < 19_999
        assert cs.lo[-1] > 0
