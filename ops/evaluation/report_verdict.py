"""The verdict of an A/B comparison: differences with intervals and one word, pooled and after warm-up.

For each arm against control: the paper's average AUC over domain columns and the overall
AUC, each with its DeLong difference, 95% interval and p-value, and the mean per-click log
loss difference with its normal interval. A difference whose interval lies above 0 (below,
for log loss) is `better`, the other way `worse`, else `no difference` (at 5%).

Warm-up. Early snapshots of an online run have seen few examples, and a verdict pooled
over them can differ in sign from the one after (docs: MMN variants trail ESMM for the
first ~7k examples and lead after ~20k). The steady-state verdict counts only clicks whose
serving snapshot had been trained on at least `warmup_examples` examples (in shadow mode:
every arm's snapshot), or only clicks from a given event time on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ops.errors import ConfigError
from ops.evaluation.stats import (
    Difference,
    auc_influence,
    auc_interval,
    average_auc_difference,
    mean_difference,
    paired_difference,
    unpaired_difference,
)
from ops.metrics import calibration, exact_auc
from streaming.events import format_event_time

Rows = Mapping[str, np.ndarray]
DOMAIN_COLUMNS = (("per_type", "conv_type"), ("per_scenario", "scenario"))


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """What `mmn report` computes and shows beyond the stored rows.

    Attributes:
        warmup_examples: the steady-state verdict counts only clicks whose serving snapshot had been
            trained on at least this many examples (in shadow mode, every arm's snapshot).
        from_ts: the steady-state verdict counts only clicks from this event time on (seconds;
            replaces warmup_examples when given).
        width: most columns of a text report line.
    """

    warmup_examples: int = 20_000
    from_ts: int | None = None
    width: int = 100

    def __post_init__(self) -> None:
        if self.warmup_examples < 0:
            raise ConfigError(
                f"ReportConfig.warmup_examples must be >= 0, got {self.warmup_examples}"
            )
        if self.width < MIN_WIDTH:
            raise ConfigError(f"ReportConfig.width must be >= {MIN_WIDTH}, got {self.width}")

    def rule(self) -> dict[str, Any]:
        """The warm-up rule as the report records it."""
        if self.from_ts is not None:
            return {"from": self.from_ts, "warmup_examples": None}
        return {"from": None, "warmup_examples": self.warmup_examples}


MIN_WIDTH = 80  # the per-domain table needs this much with an 8-character domain label


def log_losses(labels: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per-click log loss (predictions are clipped where they are made, never 0 or 1)."""
    return -(labels * np.log(p) + (1 - labels) * np.log1p(-p))


def word(d: Mapping[str, Any], *, lower_is_better: bool = False) -> str:
    """`better`, `worse` or `no difference` at 5% from a difference's 95% interval."""
    lo, hi = d["ci"]
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "no difference"
    if lo > 0 or hi < 0:
        return "better" if (lo > 0) != lower_is_better else "worse"
    return "no difference"


def _as_dict(d: Difference, key: str = "diff") -> dict[str, Any]:
    return {key: d.diff, "ci": list(d.ci), "p_value": d.p_value}


def pair(a: Rows, b: Rows) -> tuple[np.ndarray, np.ndarray]:
    """Indices into a and b of the clicks both scored, in a's order."""
    _, ia, ib = np.intersect1d(a["impression_id"], b["impression_id"], return_indices=True)
    order = np.argsort(ia, kind="mergesort")
    return ia[order], ib[order]


def _influences(rows: Rows, values: list[tuple[str, str]]) -> list[tuple[float, np.ndarray]]:
    """(AUC, influence) of each domain column (column, value) over the rows."""
    out = []
    for column, value in values:
        mask = rows[column] == value
        psi = np.zeros(len(mask))
        auc, psi[mask] = auc_influence(rows["label"][mask], rows["prediction"][mask])
        out.append((auc, psi))
    return out


def _columns(*tables: Rows) -> list[tuple[str, str]]:
    return [
        (column, v)
        for _, column in DOMAIN_COLUMNS
        for v in sorted({v for t in tables for v in t[column].tolist()})
    ]


def differences(arm: Rows, control: Rows, paired: bool) -> dict[str, Any]:
    """Overall AUC, average AUC and log-loss differences (arm - control), each with a word."""
    if paired:
        ia, ic = pair(arm, control)
        arm = {k: v[ia] for k, v in arm.items()}
        control = {**{k: v[ic] for k, v in control.items()}, "label": arm["label"]}
        auc = paired_difference(arm["label"], arm["prediction"], control["prediction"])
    else:
        auc = unpaired_difference(
            arm["label"], arm["prediction"], control["label"], control["prediction"]
        )
    columns = _columns(arm, control)
    average = average_auc_difference(
        _influences(arm, columns), _influences(control, columns), paired=paired
    )
    loss = mean_difference(
        log_losses(arm["label"], arm["prediction"]),
        log_losses(control["label"], control["prediction"]),
        paired=paired,
    )
    out: dict[str, Any] = _as_dict(auc, "auc_diff")
    out["verdict"] = word(out)
    out["avg_auc"] = _as_dict(average, "auc_diff")
    out["avg_auc"]["verdict"] = word(out["avg_auc"])
    out["log_loss"] = _as_dict(loss)
    out["log_loss"]["verdict"] = word(out["log_loss"], lower_is_better=True)
    out["n"] = len(arm["label"])
    return out


def headline(rows: Rows) -> dict[str, Any]:
    """What the verdict table shows of one arm: n, positives, both AUCs, log loss, calibration."""
    labels, p = rows["label"], rows["prediction"]
    aucs = [
        exact_auc(labels[m], p[m])
        for column, value in _columns(rows)
        for m in [rows[column] == value]
    ]
    defined = [a for a in aucs if not math.isnan(a)]
    return {
        "n": len(labels),
        "positives": int(np.sum(labels)),
        "auc": exact_auc(labels, p),
        "avg_auc": float(np.mean(defined)) if defined else math.nan,
        "log_loss": float(np.mean(log_losses(labels, p))) if len(labels) else math.nan,
        "calibration": calibration(labels, p),
    }


@dataclass(frozen=True)
class SnapshotInfo:
    """What the report needs of one stored snapshot."""

    version: int
    examples: int
    counted: str  # "trained" or "seen": examples_trained, or examples_seen where it is NULL
    watermark: int | None


def examples_at(snapshots: list[SnapshotInfo], versions: np.ndarray) -> np.ndarray:
    """Examples behind each version (-1 for none): those of the newest stored version <= it.

    A pruned snapshot's row is gone; examples only grow with the version, so the newest
    stored one before it gives a lower bound (a click is then counted after warm-up only
    if it surely was).
    """
    if not snapshots:
        return np.full(len(versions), -1, dtype=np.int64)
    known = np.array([s.version for s in snapshots])
    examples = np.array([s.examples for s in snapshots], dtype=np.int64)
    at = np.searchsorted(known, versions, side="right") - 1
    return np.where((versions >= 0) & (at >= 0), examples[np.maximum(at, 0)], -1)


def steady_state(
    by_arm: Mapping[str, Rows],
    snapshots: Mapping[str, list[SnapshotInfo]],
    config: ReportConfig,
    *,
    control: str,
    paired: bool,
) -> dict[str, Any]:
    """The verdict on the clicks after warm-up (by examples trained, or from an event time)."""
    keep: dict[str, np.ndarray] = {}
    for arm, rows in by_arm.items():
        if config.from_ts is not None:
            keep[arm] = rows["ts"] >= config.from_ts
        else:
            trained = examples_at(snapshots[arm], rows["snapshot_version"])
            keep[arm] = trained >= config.warmup_examples
    if paired:
        # A pair counts only if every arm's snapshot is past warm-up.
        ids = set.intersection(*(set(by_arm[a]["impression_id"][keep[a]].tolist()) for a in by_arm))
        # Set lookups: np.isin on object arrays of ids compares them pairwise.
        keep = {
            a: np.fromiter((i in ids for i in r["impression_id"].tolist()), bool, len(r["label"]))
            for a, r in by_arm.items()
        }
    after = {a: {k: v[keep[a]] for k, v in r.items()} for a, r in by_arm.items()}
    start = [int(r["ts"].min()) for r in after.values() if len(r["ts"])]
    return {
        "rule": config.rule(),
        "counted": sorted({s.counted for infos in snapshots.values() for s in infos}),
        "first_click": min(start) if start else None,
        "arms": {a: headline(r) for a, r in after.items()},
        "comparisons": {
            a: differences(r, after[control], paired)
            if min(len(r["label"]), len(after[control]["label"]))
            else None
            for a, r in after.items()
            if a != control
        },
    }


def per_snapshot(rows: Rows, snapshots: list[SnapshotInfo]) -> list[dict[str, Any]]:
    """One entry per serving snapshot of an arm: its examples, from when, the clicks it scored."""
    info = {s.version: s for s in snapshots}
    out = []
    for version in sorted(set(rows["snapshot_version"].tolist()) - {-1}):
        m = rows["snapshot_version"] == version
        auc, lo, hi = auc_interval(rows["label"][m], rows["prediction"][m])
        s = info.get(version)
        out.append(
            {
                "version": version,
                "examples": None if s is None else s.examples,
                "counted": None if s is None else s.counted,
                "watermark": None if s is None else s.watermark,
                "n": int(np.sum(m)),
                "positives": int(np.sum(rows["label"][m])),
                "auc": auc,
                "auc_ci": [lo, hi],
            }
        )
    return out


def describe_rule(rule: Mapping[str, Any]) -> str:
    """The warm-up rule in words."""
    if rule["from"] is not None:
        return f"clicks from {format_event_time(rule['from'])} on"
    return f"clicks served by snapshots trained on >= {rule['warmup_examples']:,} examples"
