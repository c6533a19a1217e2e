"""A demo-sized experiment's rows without running one: 38 hashed domains, 30 days, daily snapshots.

The shape of the demo's report (21 conversion types and 16 scenarios named by 32-character
hashes plus an "other" of each, two arms in shadow mode, a snapshot a day, two drift points
an hour apart) at a fraction of its cost: the rows are drawn, not scored by models. The
treatment arm ranks worse than control on its first days and better afterwards, so the
pooled and the steady-state verdicts differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ops.evaluation.report import build_report
from ops.evaluation.report_verdict import ReportConfig, SnapshotInfo

DAY = 86_400
START = 1_600_000_000 - 1_600_000_000 % DAY  # a midnight, 2020-09-13
ARMS = {"esmm": "demo-esmm", "mmn": "demo-mmn"}
DRIFT = {"demo-esmm": [START + 12 * DAY], "demo-mmn": [START + 12 * DAY + 3600]}


def _hashes(rng: np.random.Generator, k: int) -> list[str]:
    return ["".join(rng.choice(list("0123456789ABCDEF"), 32)) for _ in range(k)]


def sample_table(clicks: int = 12_000, days: int = 30, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows of `predictions()` for two arms scoring the same clicks (shadow mode)."""
    rng = np.random.default_rng(seed)
    types = [*_hashes(rng, 21), "other"]
    scens = [*_hashes(rng, 16), "other"]
    zipf_t = 1 / np.arange(1, len(types) + 1)
    zipf_s = 1 / np.arange(1, len(scens) + 1) ** 0.7
    t = rng.choice(len(types), clicks, p=zipf_t / zipf_t.sum())
    s = rng.choice(len(scens), clicks, p=zipf_s / zipf_s.sum())
    ts = np.sort(START + rng.integers(0, days * DAY, clicks))
    signal = rng.normal(size=clicks)
    base = -2.2 + 0.15 * (t % 5) - 0.1 * (s % 4)
    label = (rng.random(clicks) < 1 / (1 + np.exp(-(base + signal)))).astype(np.int64)
    day = (ts - START) // DAY
    version = day.astype(np.int64)  # snapshot v(d) serves day d; day 0 has none yet
    learned = {
        "esmm": np.minimum(1.0, 0.3 + day / 20),
        "mmn": np.where(day < 8, 0.15 + day / 40, np.minimum(1.3, 0.5 + day / 15)),
    }
    columns: dict[str, list[Any]] = {k: [] for k in (
        "arm", "impression_id", "user_id", "conv_type", "scenario", "ts", "final_ts",
        "window_start", "assigned", "snapshot_version", "prediction", "label")}  # fmt: skip
    users = rng.integers(0, 4_000, clicks)
    for arm in ARMS:
        score = base + learned[arm] * signal + rng.normal(scale=1.0, size=clicks)
        p = np.clip(1 / (1 + np.exp(-score)), 1e-7, 1 - 1e-7)
        p = np.where(version > 0, p, np.nan)
        columns["arm"] += [arm] * clicks
        columns["impression_id"] += [f"i{i:06d}" for i in range(clicks)]
        columns["user_id"] += [f"u{u}" for u in users]
        columns["conv_type"] += [types[k] for k in t]
        columns["scenario"] += [scens[k] for k in s]
        columns["ts"] += ts.tolist()
        columns["final_ts"] += (ts + 3 * DAY).tolist()
        columns["window_start"] += (START + day * DAY).tolist()
        columns["assigned"] += ((users % 2 == 0) == (arm == "esmm")).tolist()
        columns["snapshot_version"] += np.where(version > 0, version, -1).tolist()
        columns["prediction"] += p.tolist()
        columns["label"] += label.tolist()
    out = {k: np.array(v, dtype=object) for k, v in columns.items()}
    for k in ("ts", "final_ts", "window_start", "snapshot_version", "label"):
        out[k] = out[k].astype(np.int64)
    out["prediction"] = out["prediction"].astype(np.float64)
    out["assigned"] = out["assigned"].astype(bool)
    return out


def sample_snapshots(days: int = 30, per_day: int = 2_000) -> dict[str, list[SnapshotInfo]]:
    """A snapshot per day per arm; the first half counted as trained, the rest as seen only."""
    return {
        arm: [
            SnapshotInfo(
                version=v,
                examples=v * per_day,
                counted="trained" if v <= days // 2 else "seen",
                watermark=START + v * DAY,
            )
            for v in range(1, days + 1)
        ]
        for arm in ARMS
    }


def sample_report(**settings: Any) -> dict[str, Any]:
    """The report of the sample: shadow mode, daily windows, esmm the control."""
    config = {
        "arms": ARMS,
        "split": {"esmm": 1.0, "mmn": 1.0},
        "control": "esmm",
        "shadow": True,
        "window_s": DAY,
    }
    return build_report(
        "demo",
        sample_table(),
        config,
        watermark=START + 33 * DAY,
        finished=True,
        drift=DRIFT,
        status={
            "state": "finished",
            "at": "2026-12-07T10:32:05+00:00",
            "detail": "end of stream",
            "last_write": "2026-12-07T10:32:05+00:00",
        },  # fmt: skip
        models={"demo-esmm": "esmm", "demo-mmn": "mmn_dw_clip"},
        snapshots=sample_snapshots(),
        settings=ReportConfig(**settings),
    )
