"""RI-AUC of the delayed-feedback literature, with a bootstrap interval over scored days.

RI-AUC = (AUC - AUC_vanilla) / (AUC_oracle - AUC_vanilla) (ES-DFM, DEFER) divides by the
oracle's lead over vanilla; where that lead is within noise, the ratio is noise too, so it
is only given where the lead's interval excludes 0.
"""

from __future__ import annotations

import warnings

import numpy as np


def relative_improvements(
    methods: dict[str, dict], *, resamples: int = 2000, seed: int = 0
) -> tuple[dict[str, dict], dict | None]:
    """Adds `ri_auc`, its bootstrap interval `ri_auc_interval` and `ri_log_loss` to each
    method's figures; and returns the oracle's lead over vanilla with its interval.

    RI-AUC = (AUC - AUC_vanilla) / (AUC_oracle - AUC_vanilla) divides by the oracle's lead.
    Days are resampled with replacement (`resamples` times, every method on the same days)
    for a 95% percentile interval of that lead and of each RI-AUC. Where the lead's interval
    does not exclude 0, the ratio divides by noise: `ri_auc` and its interval are then None
    (the lead says why). RI-log-loss is the same ratio of the mean log losses. None of it
    without both vanilla and oracle.

    >>> days = {"vanilla": [0.70, 0.71, 0.69, 0.70], "oracle": [0.72, 0.73, 0.71, 0.72],
    ...         "x": [0.715, 0.725, 0.705, 0.715]}
    >>> m = {k: {"auc": float(np.mean(v)), "per_day_auc": v, "log_loss": 0.4} for k, v in days.items()}
    >>> m, lead = relative_improvements(m)
    >>> round(lead["auc"], 4), lead["significant"], round(m["x"]["ri_auc"], 4)
    (0.02, True, 0.75)
    """
    vanilla, oracle = methods.get("vanilla"), methods.get("oracle")
    for figures in methods.values():
        gap = (
            None if vanilla is None or oracle is None else oracle["log_loss"] - vanilla["log_loss"]
        )
        figures["ri_log_loss"] = (
            (figures["log_loss"] - vanilla["log_loss"]) / gap
            if vanilla is not None and gap
            else None
        )
        figures["ri_auc"] = figures["ri_auc_interval"] = None
    if vanilla is None or oracle is None:
        return methods, None
    per_day = {name: np.asarray(f["per_day_auc"], dtype=np.float64) for name, f in methods.items()}
    n_days = len(per_day["vanilla"])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_days, size=(resamples, n_days))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of days without AUC
        means = {name: np.nanmean(days[picks], axis=1) for name, days in per_day.items()}
    leads = means["oracle"] - means["vanilla"]
    lo, hi = np.nanpercentile(leads, [2.5, 97.5])
    point = oracle["auc"] - vanilla["auc"]
    lead = {"auc": point, "interval": [float(lo), float(hi)], "significant": bool(lo > 0)}
    if not lead["significant"]:
        return methods, lead
    for name, figures in methods.items():
        figures["ri_auc"] = (figures["auc"] - vanilla["auc"]) / point
        ratios = (means[name] - means["vanilla"]) / leads
        r_lo, r_hi = np.nanpercentile(ratios, [2.5, 97.5])
        figures["ri_auc_interval"] = [float(r_lo), float(r_hi)]
    return methods, lead
