"""Statistics of an A/B comparison: DeLong AUC intervals, Benjamini-Hochberg, SRM, confidence sequences.

- DeLong (DeLong, DeLong and Clarke-Pearson, Biometrics 1988), in the fast midrank form of
  Sun and Xu (IEEE SPL 2014): the AUC is the mean of per-positive structural components
  V10 (the share of negatives each positive outranks, ties counting half), and also of the
  per-negative components V01; its variance is var(V10)/m + var(V01)/n. Two arms scored on
  the same examples (shadow mode) are paired: the covariance of their components enters
  the variance of the difference. Arms scored on disjoint traffic are independent samples:
  the variances add.
- The paper's average AUC over domain columns (types and scenarios overlap: every example
  is in one of each) has a DeLong variance too: written per example, DeLong's variance is
  a sum of squared influences (the centred component over sqrt(m (m - 1))), and the
  average's influence of an example is the mean of its influences in the columns it is in.
- A difference of means (per-example log loss) with its normal 95% interval.
- Benjamini-Hochberg adjusted p-values across the per-domain comparisons.
- Sample-ratio mismatch: a chi-square goodness-of-fit test of the assignment counts
  against the intended split.
- An asymptotic confidence sequence for a running mean (Waudby-Smith, Arbour, Sinha,
  Kennedy and Ramdas, "Time-uniform central limit theory and asymptotic confidence
  sequences", 2021): the two-sided normal-mixture boundary with the running variance
  plugged in. It covers the mean at every time at once (asymptotically), so a report read
  at any moment of a running stream keeps its 95% level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ops.metrics import midranks

Z95 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class Components:
    """DeLong's structural components of one AUC: v10 per positive, v01 per negative."""

    auc: float
    v10: np.ndarray  # (m,)
    v01: np.ndarray  # (n,)

    @property
    def variance(self) -> float:
        """DeLong's variance of this AUC alone."""
        m, n = len(self.v10), len(self.v01)
        if m < 2 or n < 2:
            return math.nan
        return float(np.var(self.v10, ddof=1) / m + np.var(self.v01, ddof=1) / n)


@dataclass(frozen=True)
class Difference:
    """An AUC difference (treatment - control) with its standard error, 95% interval and p-value."""

    diff: float
    se: float

    @property
    def ci(self) -> tuple[float, float]:
        return (self.diff - Z95 * self.se, self.diff + Z95 * self.se)

    @property
    def p_value(self) -> float:
        if not self.se > 0:
            return math.nan
        return float(2 * sps.norm.sf(abs(self.diff) / self.se))


def components(labels: np.ndarray, scores: np.ndarray) -> Components:
    """The structural components of the AUC of scores; NaN AUC and empty parts without both classes.

    >>> c = components(np.array([1, 0, 1, 0]), np.array([0.9, 0.3, 0.3, 0.1]))
    >>> c.auc, c.v10.tolist(), c.v01.tolist()
    (0.875, [1.0, 0.75], [0.75, 1.0])
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels], scores[~labels]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return Components(math.nan, np.zeros(0), np.zeros(0))
    both = midranks(np.concatenate([pos, neg]))
    # A positive's rank among all, less its rank among positives, counts the negatives below it.
    v10 = (both[:m] - midranks(pos)) / n
    v01 = 1.0 - (both[m:] - midranks(neg)) / m
    return Components(float(v10.mean()), v10, v01)


def auc_interval(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """An AUC with its DeLong 95% interval: (auc, lo, hi)."""
    c = components(labels, scores)
    half = Z95 * math.sqrt(c.variance) if c.variance >= 0 else math.nan
    return c.auc, c.auc - half, c.auc + half


def paired_difference(labels: np.ndarray, treatment: np.ndarray, control: np.ndarray) -> Difference:
    """AUC(treatment) - AUC(control) on the same examples, with DeLong's paired variance."""
    a, b = components(labels, treatment), components(labels, control)
    m, n = len(a.v10), len(a.v01)
    if m < 2 or n < 2:
        return Difference(a.auc - b.auc, math.nan)
    s10 = np.cov(np.vstack([a.v10, b.v10]))
    s01 = np.cov(np.vstack([a.v01, b.v01]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return Difference(a.auc - b.auc, math.sqrt(max(float(var), 0.0)))


def unpaired_difference(
    labels_t: np.ndarray, treatment: np.ndarray, labels_c: np.ndarray, control: np.ndarray
) -> Difference:
    """AUC(treatment) - AUC(control) on disjoint examples: the two DeLong variances add."""
    a, b = components(labels_t, treatment), components(labels_c, control)
    return Difference(a.auc - b.auc, math.sqrt(a.variance + b.variance))


def auc_influence(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray]:
    """The AUC and each example's influence on it: the sum of squared influences is DeLong's variance.

    A class with one member has no spread to estimate: its influences are 0.

    >>> labels, scores = np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.3, 0.3, 0.1, 0.5])
    >>> auc, psi = auc_influence(labels, scores)
    >>> bool(np.isclose(np.sum(psi**2), components(labels, scores).variance))
    True
    """
    labels = np.asarray(labels, dtype=bool)
    c = components(labels, scores)
    psi = np.zeros(len(labels))
    for members, v in ((labels, c.v10), (~labels, c.v01)):
        if len(v) >= 2:
            psi[members] = (v - v.mean()) / math.sqrt(len(v) * (len(v) - 1))
    return c.auc, psi


def average_auc_difference(
    treatment: list[tuple[float, np.ndarray]],
    control: list[tuple[float, np.ndarray]],
    *,
    paired: bool,
) -> Difference:
    """Mean over domain columns of AUC(treatment) - AUC(control), with DeLong's variance.

    Each list holds one (auc, influence) pair per column (`auc_influence` over the column's
    rows, zeros elsewhere); columns whose AUC is undefined in either arm are left out, as
    the paper's average leaves them out. Paired: both arms' influences are over the same
    rows, and the variance is that of their difference; otherwise the variances add.

    >>> y = np.array([1, 0, 1, 0, 1, 0])
    >>> a, b = auc_influence(y, np.array([.9, .2, .8, .3, .4, .5])), auc_influence(y, np.zeros(6))
    >>> d = average_auc_difference([a, a], [b, b], paired=True)
    >>> bool(np.isclose(d.se, paired_difference(y, np.array([.9, .2, .8, .3, .4, .5]), np.zeros(6)).se))
    True
    """
    keep = [
        k
        for k, ((auc_t, _), (auc_c, _)) in enumerate(zip(treatment, control, strict=True))
        if math.isfinite(auc_t) and math.isfinite(auc_c)
    ]
    if not keep:
        return Difference(math.nan, math.nan)
    diff = float(np.mean([treatment[k][0] - control[k][0] for k in keep]))
    phi_t = np.sum([treatment[k][1] for k in keep], axis=0) / len(keep)
    phi_c = np.sum([control[k][1] for k in keep], axis=0) / len(keep)
    var = np.sum((phi_t - phi_c) ** 2) if paired else np.sum(phi_t**2) + np.sum(phi_c**2)
    return Difference(diff, math.sqrt(float(var)))


def mean_difference(treatment: np.ndarray, control: np.ndarray, *, paired: bool) -> Difference:
    """mean(treatment) - mean(control) with its normal standard error (paired: per example).

    >>> d = mean_difference(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.5]), paired=True)
    >>> round(d.diff, 4), round(d.se, 4)
    (0.8333, 0.1667)
    """
    t, c = np.asarray(treatment, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if paired:
        d = t - c
        if len(d) < 2:
            return Difference(float(d.mean()) if len(d) else math.nan, math.nan)
        return Difference(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))))
    if len(t) < 2 or len(c) < 2:
        return Difference(math.nan, math.nan)
    se = math.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c))
    return Difference(float(t.mean() - c.mean()), se)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (NaN stays NaN and is not counted).

    >>> [round(q, 6) for q in benjamini_hochberg([0.01, 0.04, 0.03, float("nan")])]
    [0.03, 0.04, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    defined = np.flatnonzero(~np.isnan(p))
    out = np.full(len(p), math.nan)
    if len(defined) == 0:
        return out.tolist()
    order = defined[np.argsort(p[defined], kind="mergesort")]
    k = len(order)
    scaled = p[order] * k / np.arange(1, k + 1)
    # The adjusted value of rank i is the smallest scaled value at rank >= i.
    out[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return out.tolist()


def srm_p_value(counts: list[int], weights: list[float]) -> float:
    """p-value of a chi-square test that counts follow the intended split weights.

    >>> round(srm_p_value([5000, 5000], [1, 1]), 6), srm_p_value([5000, 4000], [1, 1]) < 1e-10
    (1.0, True)
    """
    observed = np.asarray(counts, dtype=np.float64)
    total = observed.sum()
    if total == 0 or len(observed) < 2:
        return math.nan
    expected = total * np.asarray(weights, dtype=np.float64) / np.sum(weights)
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return float(sps.chi2.sf(statistic, df=len(observed) - 1))


@dataclass(frozen=True)
class ConfidenceSequence:
    """A running mean with its anytime-valid interval after each of the first t observations."""

    t: np.ndarray  # (T,) 1..T
    mean: np.ndarray  # (T,)
    lo: np.ndarray  # (T,)
    hi: np.ndarray  # (T,)

    def excludes_zero(self) -> np.ndarray:
        """(T,) True where the interval lies wholly above or below 0."""
        return (self.lo > 0) | (self.hi < 0)


def confidence_sequence(
    x: np.ndarray, *, alpha: float = 0.05, t_opt: int = 10_000, burn_in: int = 100
) -> ConfidenceSequence:
    """The asymptotic confidence sequence of the mean of x, one interval per prefix.

    Width at time t: sigma_t * sqrt(2 (t r^2 + 1) / (t^2 r^2) * log(sqrt(t r^2 + 1) / alpha)),
    the two-sided normal mixture (Robbins) with mixing variance r^2 chosen to make the
    interval narrowest at t = t_opt (Waudby-Smith et al. 2021, eq. for rho). sigma_t is the
    running standard deviation. The guarantee is asymptotic: with a handful of observations
    the variance estimate can be near 0 by chance (two equal values), so the intervals of
    the first `burn_in` observations are infinite.

    >>> cs = confidence_sequence(np.array([1.0, -1.0, 1.0, -1.0]), burn_in=2)
    >>> cs.mean.tolist(), bool(np.isinf(cs.hi[0]))
    ([1.0, 0.0, 0.3333333333333333, 0.0], True)
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.arange(1, len(x) + 1, dtype=np.float64)
    mean = np.cumsum(x) / t
    # Running variance from sums of squared deviations (centred on the total mean for accuracy).
    centred = x - (x.mean() if len(x) else 0.0)
    s1, s2 = np.cumsum(centred), np.cumsum(centred**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(t > max(burn_in, 1), (s2 - s1**2 / t) / (t - 1), np.inf)
    var = np.maximum(var, 0.0)
    log_term = -2 * math.log(alpha)
    r2 = (log_term + math.log(log_term + 1)) / t_opt
    with np.errstate(invalid="ignore"):
        width = np.sqrt(var) * np.sqrt(
            2 * (t * r2 + 1) / (t**2 * r2) * np.log(np.sqrt(t * r2 + 1) / alpha)
        )
    return ConfidenceSequence(t=t.astype(np.int64), mean=mean, lo=mean - width, hi=mean + width)
