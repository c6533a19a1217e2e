"""An experiment's report, computed from its stored rows: per arm x domain x window, and against control.

Every figure comes from the `experiment_predictions` rows (the same rows
`--export-predictions` writes), so anyone can recompute it. Per arm and per domain (overall,
each conversion type, each display scenario) and per event-time window: examples,
positives, exact AUC, PR-AUC, log loss and calibration (sum predicted / sum actual); the
paper's average AUC over all type and scenario columns. Against control: the AUC
difference with a DeLong 95% interval (paired on the clicks both arms scored in shadow
mode, independent samples otherwise), per-domain differences with Benjamini-Hochberg
adjusted p-values, the sample-ratio-mismatch test of the assignment, and in shadow mode an
anytime-valid confidence sequence for the mean per-example log-loss difference. The
verdict (ops.evaluation.report_verdict) adds the average AUC's and the log loss's
differences with a word each, the same after warm-up, and each serving snapshot's AUC;
the header carries the status the evaluator recorded and each arm's model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import RegistryError
from ops.evaluation.domains import average_auc, by_domain, domain_masks
from ops.evaluation.report_verdict import (
    ReportConfig,
    SnapshotInfo,
    differences,
    log_losses,
    pair,
    per_snapshot,
    steady_state,
)
from ops.evaluation.stats import (
    auc_interval,
    benjamini_hochberg,
    confidence_sequence,
    paired_difference,
    srm_p_value,
    unpaired_difference,
)
from ops.metrics import average_precision, calibration, exact_auc, log_loss
from ops.store.database import Snapshot, get_run, list_snapshots
from ops.store.experiments import (
    LIVE_WITHIN_S,
    Experiment,
    get_experiment,
    last_heard,
    predictions,
)

CS_POINTS = 200  # points of the confidence sequence kept in a report (for its plot)
SRM_ALPHA = 0.001  # a mismatch this unlikely under the intended split means a broken pipeline


def figures(labels: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """n, positives, AUC, PR-AUC, log loss and calibration of one slice."""
    return {
        "n": len(labels),
        "positives": int(np.sum(labels)),
        "auc": exact_auc(labels, p),
        "pr_auc": average_precision(labels, p),
        "log_loss": log_loss(labels, p),
        "calibration": calibration(labels, p),
    }


def _slice(labels: np.ndarray, p: np.ndarray, rows: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Overall, per-type and per-scenario figures of some rows, and the paper's average AUC
    (`ops.evaluation.domains`)."""
    table = by_domain(labels, p, domain_masks(rows["conv_type"], rows["scenario"]), figures)
    return {"overall": figures(labels, p), **table, "avg_auc": average_auc(table, "auc")}


def _arm_block(rows: Mapping[str, np.ndarray], run: str) -> dict[str, Any]:
    """One arm: cumulative figures, then the same per event-time window (with the AUC's interval)."""
    labels, p = rows["label"], rows["prediction"]
    block: dict[str, Any] = {"run": run, **_slice(labels, p, rows)}
    block["windows"] = []
    for start in sorted(set(rows["window_start"].tolist())):
        m = rows["window_start"] == start
        _, lo, hi = auc_interval(labels[m], p[m])
        window = _slice(labels[m], p[m], _select(rows, m))
        block["windows"].append({"window_start": start, "auc_ci": [lo, hi], **window})
    return block


def _select(table: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in table.items()}


def _difference(
    arm: Mapping[str, np.ndarray], control: Mapping[str, np.ndarray], paired: bool
) -> dict[str, Any]:
    if paired:
        ia, ic = pair(arm, control)
        d = paired_difference(arm["label"][ia], arm["prediction"][ia], control["prediction"][ic])
    else:
        d = unpaired_difference(
            arm["label"], arm["prediction"], control["label"], control["prediction"]
        )
    return {"auc_diff": d.diff, "ci": list(d.ci), "p_value": d.p_value}


def _comparison(
    arm: Mapping[str, np.ndarray], control: Mapping[str, np.ndarray], paired: bool
) -> dict[str, Any]:
    out = differences(arm, control, paired)
    per_domain: dict[str, dict[str, Any]] = {}
    for key, column in (("type", "conv_type"), ("scenario", "scenario")):
        for value in sorted(set(arm[column].tolist()) & set(control[column].tolist())):
            per_domain[f"{key}={value}"] = _difference(
                _select(arm, arm[column] == value),
                _select(control, control[column] == value),
                paired,
            )
    adjusted = benjamini_hochberg([d["p_value"] for d in per_domain.values()])
    for d, q in zip(per_domain.values(), adjusted, strict=True):
        d["p_adjusted"] = q
    out["paired"] = paired
    out["per_domain"] = per_domain
    if paired:
        out["confidence_sequence"] = _log_loss_sequence(arm, control)
    return out


def _log_loss_sequence(
    arm: Mapping[str, np.ndarray], control: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The 95% confidence sequence of mean log loss (arm - control), in final-label order."""
    ia, ic = pair(arm, control)
    y = arm["label"][ia]
    cs = confidence_sequence(
        log_losses(y, arm["prediction"][ia]) - log_losses(y, control["prediction"][ic])
    )
    if len(cs.t) == 0:
        return {"t": [], "mean": [], "lo": [], "hi": [], "ever_excludes_zero": False}
    keep = np.unique(np.linspace(0, len(cs.t) - 1, min(CS_POINTS, len(cs.t))).astype(int))
    return {
        "t": cs.t[keep].tolist(),
        "mean": cs.mean[keep].tolist(),
        "lo": cs.lo[keep].tolist(),
        "hi": cs.hi[keep].tolist(),
        "ever_excludes_zero": bool(cs.excludes_zero().any()),
    }


def _srm(table: Mapping[str, np.ndarray], split: Mapping[str, float]) -> dict[str, Any]:
    """Chi-square of assigned users per arm against the intended split (users are the unit)."""
    users: dict[str, set[str]] = {arm: set() for arm in split}
    for arm, user in zip(
        table["arm"][table["assigned"]], table["user_id"][table["assigned"]], strict=True
    ):
        users[arm].add(user)
    counts = [len(users[arm]) for arm in split]
    p = srm_p_value(counts, list(split.values()))
    return {
        "p_value": p,
        "alpha": SRM_ALPHA,
        "users": dict(zip(split, counts, strict=True)),
        "intended": {arm: w / sum(split.values()) for arm, w in split.items()},
        "mismatch": bool(p < SRM_ALPHA) if not math.isnan(p) else False,
    }


def build_report(
    name: str,
    table: Mapping[str, np.ndarray],
    config: Mapping[str, Any],
    *,
    watermark: int | None = None,
    finished: bool = False,
    drift: Mapping[str, list[int]] | None = None,
    status: Mapping[str, Any] | None = None,
    models: Mapping[str, str | None] | None = None,
    snapshots: Mapping[str, list[SnapshotInfo]] | None = None,
    settings: ReportConfig | None = None,
) -> dict[str, Any]:
    """The report of experiment `name` from its rows (ops.store.experiments.predictions).

    status: what the evaluator recorded (`status_of`); models: run -> model name;
    snapshots: arm -> its run's stored snapshots, for the warm-up rule and per-snapshot AUC.
    """
    arms: dict[str, str] = dict(config["arms"])
    settings = settings or ReportConfig()
    snapshots = snapshots or {arm: [] for arm in arms}
    scored = ~np.isnan(table["prediction"])
    by_arm = {arm: _select(table, scored & (table["arm"] == arm)) for arm in arms}
    control, paired = config["control"], bool(config["shadow"])
    blocks = {arm: _arm_block(by_arm[arm], run) for arm, run in arms.items()}
    for arm, block in blocks.items():
        block["model"] = (models or {}).get(arms[arm])
        block["snapshots"] = per_snapshot(by_arm[arm], snapshots[arm])
    report: dict[str, Any] = {
        "experiment": name,
        "control": control,
        "shadow": paired,
        "window_s": config["window_s"],
        "watermark": watermark,
        "finished": finished,
        "status": dict(status or {"state": "finished" if finished else "running"}),
        "unscored": {arm: int(np.sum(~scored & (table["arm"] == arm))) for arm in arms},
        "arms": blocks,
        "comparisons": {
            arm: _comparison(by_arm[arm], by_arm[control], paired) for arm in arms if arm != control
        },
        "steady": steady_state(by_arm, snapshots, settings, control=control, paired=paired),
        "srm": _srm(table, config["split"]),
        "drift": dict(drift or {}),
    }
    return report


def json_safe(value: Any) -> Any:
    """The report with NaN and infinities as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _drift(session: Session, run: str) -> list[int]:
    """Event times at which the run's trainer saw its loss drift (from its snapshots' metrics)."""
    try:
        snapshots = list_snapshots(session, run)
    except RegistryError:  # the arm's trainer has not registered yet
        return []
    points = {t for s in snapshots if s.metrics for t in s.metrics.get("drift_points", [])}
    return sorted(points)


def status_of(experiment: Experiment) -> dict[str, Any]:
    """What the evaluator last recorded: state, when, why; and the time of its last write."""
    return {
        "state": experiment.status,
        "at": _iso(experiment.status_at),
        "detail": experiment.status_detail,
        "last_write": _iso(experiment.updated_at),
        "last_heard": _iso(last_heard(experiment)),
        "live_within_s": LIVE_WITHIN_S,
    }


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    # SQLite hands back naive datetimes; the registry writes UTC.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _snapshot_infos(session: Session, run: str) -> list[SnapshotInfo]:
    try:
        stored: list[Snapshot] = list_snapshots(session, run)
    except RegistryError:  # the arm's trainer has not registered yet
        return []
    return [
        SnapshotInfo(
            version=s.version,
            examples=s.examples_seen if s.examples_trained is None else s.examples_trained,
            counted="seen" if s.examples_trained is None else "trained",
            watermark=s.watermark,
        )
        for s in stored
    ]


def _model(session: Session, run: str) -> str | None:
    try:
        return get_run(session, run).model
    except RegistryError:
        return None


def load_report(
    Session: sessionmaker[Session], name: str, settings: ReportConfig | None = None
) -> dict[str, Any]:
    """The report of the stored experiment `name`, with the drift points its arms' trainers saw."""
    with Session() as session:
        experiment = get_experiment(session, name)
        table = predictions(session, name)
        arms: dict[str, str] = experiment.config["arms"]
        return build_report(
            name,
            table,
            experiment.config,
            watermark=experiment.watermark,
            finished=experiment.finished,
            drift={run: _drift(session, run) for run in arms.values()},
            status=status_of(experiment),
            models={run: _model(session, run) for run in arms.values()},
            snapshots={arm: _snapshot_infos(session, run) for arm, run in arms.items()},
            settings=settings,
        )
