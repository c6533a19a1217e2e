"""The experiment report as one self-contained HTML file: tables and inline SVG plots, no network.

Plots: AUC over event time per arm with its DeLong 95% interval (drift points of the arms'
trainers marked), per-domain AUC differences against control with their intervals (a
forest plot), calibration per domain (a reliability diagram: mean predicted against the
observed conversion rate of each domain), and in shadow mode the confidence sequence of
the log-loss difference over the clicks. The SRM verdict is in the summary. No script
runs in the page.
"""

from __future__ import annotations

import html
import math
from typing import Any

from ops.evaluation.report_text import format_report
from ops.evaluation.svg import PALETTE, Chart, finite_range
from streaming.events import format_event_time

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 12px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.verdict-ok { color: #2a7a2a; } .verdict-bad { color: #b00020; font-weight: bold; }
"""


def _day(ts: float) -> str:
    return format_event_time(int(ts))[:16].replace("T", " ")


def auc_over_time(report: dict[str, Any]) -> str:
    """AUC per event-time window, per arm, with its interval band; drift points as lines."""
    series = {arm: block["windows"] for arm, block in report["arms"].items()}
    xs = [w["window_start"] for ws in series.values() for w in ws]
    ys = [v for ws in series.values() for w in ws for v in (w["overall"]["auc"], *w["auc_ci"])]
    lo, hi = finite_range(ys)
    chart = Chart(x=finite_range(xs), y=(max(lo, 0.0), min(hi, 1.0)), title="AUC over event time (95% DeLong)",
                  xlabel="window start (event time, UTC)", ylabel="AUC", xfmt=_day)  # fmt: skip
    for k, (arm, windows) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        x = [w["window_start"] for w in windows]
        chart.band(
            x, [w["auc_ci"][0] for w in windows], [w["auc_ci"][1] for w in windows], color=color
        )
        auc = [w["overall"]["auc"] for w in windows]
        chart.line(x, auc, color=color, label=arm)
        chart.points(x, auc, color=color)
    lo, hi = chart.x
    for run, points in report["drift"].items():
        for t in points:
            if lo <= t <= hi:
                chart.vline(t, label=f"drift {run}")
    return chart.render()


def forest(report: dict[str, Any], arm: str) -> str:
    """Per-domain AUC difference (arm - control) with 95% intervals; overall first."""
    c = report["comparisons"][arm]
    rows = [("overall", c), *c["per_domain"].items()]
    bounds = [v for _, d in rows for v in (d["auc_diff"], *d["ci"])]
    chart = Chart(x=finite_range([*bounds, 0.0]), y=(len(rows), -1), title=f"AUC difference {arm} - {report['control']}",
                  xlabel="AUC difference (95% interval)", height=80 + 22 * len(rows),
                  yticks=False)  # fmt: skip
    chart.vline(0.0)
    for i, (name, d) in enumerate(rows):
        color = PALETTE[0] if name == "overall" else PALETTE[2]
        chart.error_bar_h(i, d["ci"][0], d["ci"][1], d["auc_diff"], color=color)
        chart.text(
            chart.x[0],
            i,
            name if name == "overall" else f"{name} (q={d.get('p_adjusted', math.nan):.2g})",
        )
    return chart.render()


def reliability(report: dict[str, Any]) -> str:
    """Mean prediction against observed conversion rate, one point per domain and arm."""
    pts: dict[str, tuple[list[float], list[float]]] = {}
    for arm, block in report["arms"].items():
        xs, ys = [], []
        for key in ("per_type", "per_scenario"):
            for f in block[key].values():
                if f["n"] and f["positives"] and not math.isnan(f["calibration"]):
                    rate = f["positives"] / f["n"]
                    xs.append(rate * f["calibration"])  # mean prediction = calibration x rate
                    ys.append(rate)
        pts[arm] = (xs, ys)
    everything = [v for xs, ys in pts.values() for v in (*xs, *ys)]
    top = finite_range([0.0, *everything])[1]
    chart = Chart(x=(0, top), y=(0, top), title="Calibration per domain (reliability)",
                  xlabel="mean predicted CVR", ylabel="observed CVR")  # fmt: skip
    chart.line([0, top], [0, top], color="#999", dash="4,3")
    for k, (arm, (xs, ys)) in enumerate(pts.items()):
        chart.points(xs, ys, color=PALETTE[k % len(PALETTE)], label=arm)
    return chart.render()


def sequence(report: dict[str, Any], arm: str) -> str | None:
    """The anytime-valid 95% confidence sequence of the mean log-loss difference (shadow mode)."""
    cs = report["comparisons"][arm].get("confidence_sequence")
    if not cs or not cs["t"]:
        return None
    finite = [v for v in (*cs["lo"], *cs["hi"]) if v is not None and math.isfinite(v)]
    chart = Chart(x=finite_range(cs["t"], pad=0), y=finite_range([*finite, 0.0, *cs["mean"]]),
                  title=f"Log-loss difference {arm} - {report['control']} (anytime-valid 95%)",
                  xlabel="clicks with final labels", ylabel="mean difference")  # fmt: skip
    lo = [v if v is not None else -math.inf for v in cs["lo"]]
    hi = [v if v is not None else math.inf for v in cs["hi"]]
    chart.band(cs["t"], lo, hi, color=PALETTE[1])
    chart.line(cs["t"], cs["mean"], color=PALETTE[1], label="running mean")
    chart.hline(0.0)
    return chart.render()


def render_html(report: dict[str, Any]) -> str:
    """The whole report page."""
    srm = report["srm"]
    verdict = (
        '<span class="verdict-bad">sample ratio MISMATCH: the assignment or logging is broken</span>'
        if srm["mismatch"]
        else '<span class="verdict-ok">sample ratio ok</span>'
    )
    plots = [auc_over_time(report), reliability(report)]
    for arm in report["comparisons"]:
        plots.append(forest(report, arm))
        cs = sequence(report, arm)
        if cs is not None:
            plots.append(cs)
    name = html.escape(report["experiment"])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'
        f"<title>mmn experiment {name}</title><style>{STYLE}</style></head><body>"
        f"<h1>Experiment {name}</h1><p>{verdict} (chi-square p = {srm['p_value']:.3g}; "
        f"users per arm {html.escape(str(srm['users']))})</p>"
        f"<pre>{html.escape(format_report(report))}</pre>"
        f'<div class="plots">{"".join(plots)}</div></body></html>\n'
    )
