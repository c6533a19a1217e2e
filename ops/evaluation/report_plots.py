"""The HTML report's plots, each an inline SVG string (ops.evaluation.svg).

- AUC over event time per arm with its DeLong 95% band; the trainers' drift points as
  markers above the plot (named on hover).
- Calibration per domain: mean prediction against the observed rate, one point per domain
  and arm, its area proportional to the domain's clicks, named on hover.
- A forest plot per comparison: each domain's AUC difference with its 95% interval, labels
  in a gutter left of the axis, q-values in a gutter right of it.
- The confidence sequence of the log-loss difference (shadow mode).
- The AUC of every serving snapshot against the examples it had been trained on.
"""

from __future__ import annotations

import math
from typing import Any

from ops.evaluation.report_labels import KINDS, domain_name, p_value, short_labels, signed
from ops.evaluation.svg import PALETTE, Chart, Margins, finite_range, text_width, time_ticks
from streaming.events import format_event_time

ROW_PX = 20  # forest plot: pixels per row (11 px text never meets its neighbour)


def _color(report: dict[str, Any], arm: str) -> str:
    return PALETTE[list(report["arms"]).index(arm) % len(PALETTE)]


def auc_over_time(report: dict[str, Any]) -> str:
    """AUC per event-time window, per arm, with its interval band; drift points as markers."""
    series = {arm: block["windows"] for arm, block in report["arms"].items()}
    xs = [w["window_start"] for ws in series.values() for w in ws]
    ys = [v for ws in series.values() for w in ws for v in (w["overall"]["auc"], *w["auc_ci"])]
    lo, hi = finite_range(ys)
    x = finite_range(xs, pad=0.02)
    chart = Chart(x=x, y=(max(lo, 0.0), min(hi, 1.0)), title="AUC over event time (95% DeLong)",
                  xlabel="window start (event time, UTC)", ylabel="AUC",
                  xticks=time_ticks(*x))  # fmt: skip
    chart.hline(0.5, color="#bbb")
    for arm, windows in series.items():
        color = _color(report, arm)
        at = [w["window_start"] for w in windows]
        chart.band(at, [w["auc_ci"][0] for w in windows], [w["auc_ci"][1] for w in windows],
                   color=color)  # fmt: skip
        auc = [w["overall"]["auc"] for w in windows]
        chart.line(at, auc, color=color, label=arm)
        titles = [
            f"{arm}, window from {format_event_time(w['window_start'])}: AUC "
            f"{w['overall']['auc']:.4f} on {w['overall']['n']:,} clicks"
            for w in windows
        ]
        chart.points(at, auc, color=color, titles=titles)
    runs = {block["run"]: arm for arm, block in report["arms"].items()}
    for run, points in report["drift"].items():
        color = _color(report, runs[run]) if run in runs else "#555"
        for t in points:
            if x[0] <= t <= x[1]:
                chart.marker(t, color=color, label=f"drift ({run})",
                             title=f"{run}: loss drift seen at {format_event_time(t)}")  # fmt: skip
    return chart.render()


def reliability(report: dict[str, Any]) -> str:
    """Mean prediction against observed conversion rate, one point per domain and arm."""
    biggest = max(
        (f["n"] for b in report["arms"].values() for k, _ in KINDS for f in b[k].values()),
        default=1,
    )
    series: dict[str, tuple[list[float], list[float], list[float], list[str]]] = {}
    for arm, block in report["arms"].items():
        xs, ys, radii, titles = [], [], [], []
        for key, kind in KINDS:
            names = short_labels(block[key])
            for value, f in block[key].items():
                if not (f["n"] and f["positives"]) or math.isnan(f["calibration"]):
                    continue
                rate = f["positives"] / f["n"]
                xs.append(rate * f["calibration"])  # mean prediction = calibration x rate
                ys.append(rate)
                radii.append(2.5 + 9 * math.sqrt(f["n"] / biggest))
                titles.append(
                    f"{arm}, {kind} {domain_name(kind, value, names[value])} ({value}): "
                    f"{f['n']:,} clicks, predicted {rate * f['calibration']:.3f}, "
                    f"observed {rate:.3f}"
                )
        series[arm] = (xs, ys, radii, titles)
    everything = [v for xs, ys, _, _ in series.values() for v in (*xs, *ys)]
    top = finite_range([0.0, *everything])[1]
    chart = Chart(x=(0, top), y=(0, top), title="Calibration per domain",
                  xlabel="mean predicted CVR", ylabel="observed CVR")  # fmt: skip
    chart.line([0, top], [0, top], color="#999", dash="4,3", width=1)
    for arm, (xs, ys, radii, titles) in series.items():
        chart.points(xs, ys, color=_color(report, arm), label=arm, radii=radii, titles=titles)
    return chart.render()


def forest(report: dict[str, Any], arm: str) -> str:
    """Per-domain AUC difference (arm - control) with 95% intervals; overall first."""
    c = report["comparisons"][arm]
    rows: list[tuple[str, str, dict[str, Any]]] = [("overall", "all clicks", c)]
    for _key, kind in KINDS:
        values = [d.split("=", 1)[1] for d in c["per_domain"] if d.startswith(f"{kind}=")]
        names = short_labels(values)
        for value in values:
            name = domain_name(kind, value, names[value])
            label = name if name.endswith(f" {kind}") else f"{kind} {name}"
            rows.append((label, value, c["per_domain"][f"{kind}={value}"]))
    bounds = [abs(v) for _, _, d in rows for v in (d["auc_diff"], *d["ci"]) if _finite(v)]
    overall = [abs(v) for v in (c["auc_diff"], *c["ci"]) if _finite(v)]
    # Wide intervals of tiny domains would flatten every other bar: the axis stops at
    # four times the overall interval (or where 80% of the bounds are), arrows mark the rest.
    reach = max([*(4 * v for v in overall), _quantile(bounds, 0.8), 0.01])
    reach = min(reach, max(bounds, default=reach) * 1.05, 1.0)
    gutter = int(max(text_width(label) for label, _, _ in rows)) + 16
    chart = Chart(
        x=(-reach, reach),
        y=(len(rows), -1),
        title=f"AUC difference per domain: {arm} - {report['control']}",
        xlabel="AUC difference with its 95% interval (right of 0: the arm ranks better)",
        yticks=False,
        height=52 + 46 + ROW_PX * (len(rows) + 1),
        margins=Margins(left=gutter, right=64),
    )
    chart.vline(0.0)
    for i, (label, value, d) in enumerate(rows):
        color = PALETTE[0] if i == 0 else PALETTE[2]
        summary = f"{value}: {signed(d['auc_diff'])} [{signed(d['ci'][0])}, {signed(d['ci'][1])}]"
        chart.error_bar_h(i, d["ci"][0], d["ci"][1], d["auc_diff"], color=color, title=summary)
        chart.row_label(i, label, title=value)
        q = d.get("p_adjusted")
        chart.row_label(i, "p " + p_value(d["p_value"]) if i == 0 else "q " + p_value(q),
                        side="right")  # fmt: skip
    return chart.render()


def sequence(report: dict[str, Any], arm: str) -> str | None:
    """The anytime-valid 95% confidence sequence of the mean log-loss difference (shadow mode)."""
    cs = report["comparisons"][arm].get("confidence_sequence")
    if not cs or not cs["t"]:
        return None
    finite = [v for v in (*cs["lo"], *cs["hi"]) if _finite(v)]
    chart = Chart(x=(0, max(cs["t"])), y=finite_range([*finite, 0.0, *cs["mean"]]),
                  title=f"Log-loss difference {arm} - {report['control']} (anytime-valid 95%)",
                  xlabel="clicks with final labels", ylabel="mean difference")  # fmt: skip
    lo = [v if v is not None else -math.inf for v in cs["lo"]]
    hi = [v if v is not None else math.inf for v in cs["hi"]]
    color = _color(report, arm)
    chart.band(cs["t"], lo, hi, color=color)
    chart.line(cs["t"], cs["mean"], color=color, label="running mean")
    chart.hline(0.0)
    return chart.render()


def snapshots(report: dict[str, Any]) -> str | None:
    """AUC of the clicks each serving snapshot scored, against the examples it had learned."""
    series = {
        arm: [s for s in block["snapshots"] if s["examples"] is not None]
        for arm, block in report["arms"].items()
    }
    xs = [s["examples"] for ss in series.values() for s in ss]
    if not xs:
        return None
    ys = [s["auc"] for ss in series.values() for s in ss]
    lo, hi = finite_range(ys)
    x = finite_range([0, *xs], pad=0.03)
    chart = Chart(x=x, y=(max(lo, 0.0), min(hi, 1.0)), title="AUC per serving snapshot",
                  xlabel="examples the snapshot had learned from", ylabel="AUC")  # fmt: skip
    chart.hline(0.5, color="#bbb")
    rule = report["steady"]["rule"]
    if rule["warmup_examples"] is not None and x[0] <= rule["warmup_examples"] <= x[1]:
        chart.vline(rule["warmup_examples"], color="#555")
        chart.legend.append(("#555", "warm-up threshold", "line"))
    for arm, ss in series.items():
        color = _color(report, arm)
        at = [s["examples"] for s in ss]
        auc = [s["auc"] for s in ss]
        chart.line(at, auc, color=color, label=arm, width=1.5)
        titles = [
            f"{arm} v{s['version']}: {s['examples']:,} examples ({s['counted']}), "
            f"{s['n']:,} clicks, AUC {s['auc']:.4f}"
            for s in ss
        ]
        chart.points(at, auc, color=color, titles=titles)
    return chart.render()


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
