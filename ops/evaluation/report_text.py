"""An experiment report as a terminal table, in the layout of the paper's Table 3.

One row per arm: the AUC of each conversion type, then of each display scenario, then
their average (the paper's "Avg"), then the overall n, positives, log loss and calibration.
Below: each arm against control (AUC difference, 95% interval, p-value; per domain with
Benjamini-Hochberg adjusted p-values), the sample-ratio check and, in shadow mode, the
anytime-valid confidence sequence of the log-loss difference.
"""

from __future__ import annotations

import math
from typing import Any

from streaming.events import format_event_time


def _f(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def arm_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Table 3's layout for labelled arm blocks (label -> the report's arm block)."""
    types = sorted({t for r in rows.values() for t in r["per_type"]})
    scens = sorted({s for r in rows.values() for s in r["per_scenario"]})
    header = ["arm", "run", *types, *scens, "Avg", "n", "pos", "logloss", "calib"]
    lines = [header]
    for label, r in rows.items():
        cells = [label, r["run"]]
        cells += [_f(r["per_type"][t]["auc"]) if t in r["per_type"] else "-" for t in types]
        cells += [_f(r["per_scenario"][s]["auc"]) if s in r["per_scenario"] else "-" for s in scens]
        o = r["overall"]
        cells += [_f(r["avg_auc"]), str(o["n"]), str(o["positives"])]
        cells += [_f(o["log_loss"]), _f(o["calibration"], ".3f")]
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return [
        "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]


def _interval(d: dict[str, Any]) -> str:
    lo, hi = d["ci"]
    return f"{d['auc_diff']:+.4f} [{_f(lo, '+.4f')}, {_f(hi, '+.4f')}] p={_f(d['p_value'], '.3g')}"


def format_report(report: dict[str, Any]) -> str:
    """The whole report as text."""
    mode = (
        "shadow: paired on the same clicks"
        if report["shadow"]
        else "split traffic: independent samples"
    )
    state = "finished" if report["finished"] else "running"
    lines = [
        f"experiment {report['experiment']} ({mode}; {state}; final labels up to "
        f"{format_event_time(report['watermark'])})",
        "CVR AUC on clicks, each scored by its arm's serving snapshot against its final label",
        *arm_table(report["arms"]),
    ]
    unscored = {a: n for a, n in report["unscored"].items() if n}
    if unscored:
        lines.append(f"clicks before an arm's first snapshot (not scored): {unscored}")
    for arm, c in report["comparisons"].items():
        kind = "DeLong paired" if c["paired"] else "DeLong, independent samples"
        lines.append(f"{arm} vs {report['control']}: AUC {_interval(c)} ({kind})")
        for domain, d in c["per_domain"].items():
            lines.append(
                f"    {domain:<20} {_interval(d)} BH-adjusted p={_f(d['p_adjusted'], '.3g')}"
            )
        cs = c.get("confidence_sequence")
        if cs and cs["t"]:
            lines.append(
                f"    log-loss difference, anytime-valid 95%: {cs['mean'][-1]:+.5f} "
                f"[{_f(cs['lo'][-1], '+.5f')}, {_f(cs['hi'][-1], '+.5f')}] after {cs['t'][-1]} clicks; "
                + ("excluded 0 at some point" if cs["ever_excludes_zero"] else "never excluded 0")
            )
    srm = report["srm"]
    verdict = "MISMATCH: the assignment is broken" if srm["mismatch"] else "ok"
    shares = ", ".join(
        f"{a} {srm['users'][a]} users ({w:.0%} intended)" for a, w in srm["intended"].items()
    )
    lines.append(f"sample ratio: {shares}; chi-square p={_f(srm['p_value'], '.3g')} -> {verdict}")
    for run, points in report["drift"].items():
        if points:
            lines.append(f"drift ({run}): {', '.join(format_event_time(t) for t in points[-5:])}")
    return "\n".join(lines)


def format_compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two experiments side by side: each arm of each as one Table 3 row."""
    rows = {f"{r['experiment']}/{arm}": block for r in (a, b) for arm, block in r["arms"].items()}
    lines = [f"compare {a['experiment']} and {b['experiment']} (CVR AUC per domain, final labels)"]
    lines += arm_table(rows)
    for r in (a, b):
        for arm, c in r["comparisons"].items():
            lines.append(f"{r['experiment']}: {arm} vs {r['control']}: AUC {_interval(c)}")
    return "\n".join(lines)
