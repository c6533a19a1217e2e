"""The experiment report as one self-contained HTML file: verdict card, tables, inline SVG plots.

Top to bottom: the verdict card (each arm against control on the paper's average AUC, all
clicks and after warm-up, with the experiment's status), the verdict table (both AUCs and
log loss, pooled and after warm-up), the arms table, the sample-ratio check, the
per-domain table of each comparison, then the plots (ops.evaluation.report_plots) and
the per-snapshot table. Every section says in one sentence how to read it. Tables sort by
a click on a column head (a few lines of inline script); nothing is fetched.
"""

from __future__ import annotations

import html
from typing import Any

from ops.evaluation import report_plots
from ops.evaluation.report_labels import (
    KINDS,
    domain_name,
    interval,
    p_value,
    plain,
    short_labels,
    signed,
)
from ops.evaluation.report_text import status_line
from ops.evaluation.report_verdict import describe_rule
from streaming.events import format_event_time

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; padding: 0 16px; color: #222;
       max-width: 1240px; }
h1 { font-size: 1.45em; margin: 0 0 6px; } h2 { font-size: 1.15em; margin: 28px 0 4px; }
p.how { color: #555; margin: 2px 0 8px; max-width: 80em; }
.card { border: 1px solid #ccc; border-left: 8px solid #888; border-radius: 6px;
        padding: 12px 16px; margin-bottom: 16px; }
.card.better { border-left-color: #2a7a2a; } .card.worse { border-left-color: #b00020; }
.card .lift { font-size: 1.1em; margin: 4px 0; } .card .meta { color: #555; margin: 4px 0 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right;
         white-space: nowrap; }
th { background: #f4f4f4; cursor: pointer; user-select: none; }
td.name, th.name { text-align: left; } code { font-size: 12px; }
td.better { color: #2a7a2a; font-weight: bold; } td.worse { color: #b00020; font-weight: bold; }
.bad { color: #b00020; font-weight: bold; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 16px; }
figure { margin: 0; } figure svg { width: 100%; height: auto; max-width: 640px; }
figcaption { color: #555; font-size: 13px; max-width: 640px; }
"""

# Sort a table by the clicked column: numbers by value (data-v), text by text; again: reverse.
SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, i) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const key = tr => { const td = tr.cells[i]; const v = td.dataset.v;
                      return v === undefined ? td.textContent : (v === '' ? NaN : Number(v)); };
  const up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (typeof x === 'number') { if (isNaN(x)) return 1; if (isNaN(y)) return -1; return up ? x - y : y - x; }
    return up ? x.localeCompare(y) : y.localeCompare(x);
  });
  rows.forEach(r => body.appendChild(r));
}));
"""

HOW = {
    "verdict": (
        "Differences are the arm minus control with 95% intervals (DeLong for AUC, a normal "
        "interval for the mean log loss); better or worse means the interval excludes 0, "
        "i.e. significant at 5%; lower log loss is better."
    ),
    "arms": (
        "Each arm's clicks scored by its serving snapshot against final labels; average AUC is "
        "the paper's mean over conversion types and display scenarios, calibration is "
        "predicted over actual conversions (1 is calibrated)."
    ),
    "domains": (
        "One row per conversion type and display scenario; q is the Benjamini-Hochberg "
        "adjusted p-value: among the rows with q below 0.05, at most 5% of the differences "
        "are expected to be false discoveries."
    ),
    "time": (
        "Each point is one event-time window's AUC with its 95% band; triangles above the "
        "plot mark where a trainer saw its loss drift (hover for the time)."
    ),
    "calibration": (
        "Points on the dashed diagonal are calibrated; below it an arm over-predicts that "
        "domain; a point's area is proportional to the domain's clicks (hover for its name)."
    ),
    "forest": (
        "Each bar is one domain's AUC difference with its 95% interval; a bar clear of the "
        "dashed 0 line is significant on its own, the q-value on the right corrects for "
        "looking at every domain; arrows mark intervals wider than the axis."
    ),
    "sequence": (
        "The band covers the true mean log-loss difference at every moment at once with 95% "
        "probability, so it may be read as often as you like while the stream runs; once it "
        "lies wholly below 0 the arm's log loss is lower."
    ),
    "snapshots": (
        "The AUC of the clicks each serving snapshot scored, against the examples it had "
        "learned from: how fast each arm warms up."
    ),
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, text: str, css: str = "") -> str:
    data = "" if value is None or value != value else repr(float(value))
    return f'<td data-v="{data}"{f" class={css!r}" if css else ""}>{_e(text)}</td>'


def _table(name: str, head: list[str], rows: list[str], *, names: int = 1) -> str:
    cells = "".join(
        f'<th class="name">{_e(h)}</th>' if i < names else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    return (
        f'<table class="sortable" data-table="{name}"><thead><tr>{cells}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _card(report: dict[str, Any], arm: str) -> str:
    c, steady = report["comparisons"][arm], report["steady"]
    after = steady["comparisons"].get(arm)
    pooled = c["avg_auc"]
    word = after["avg_auc"]["verdict"] if after else pooled["verdict"]
    headline = f"{arm} vs {report['control']}: {word}"
    if after:
        headline += " after warm-up" + (
            "" if pooled["verdict"] == word else f" ({pooled['verdict']} on all clicks)"
        )
    lifts = [f"all clicks {signed(pooled['auc_diff'])} {interval(pooled['ci'])}"]
    if after:
        lifts.append(
            f"after warm-up {signed(after['avg_auc']['auc_diff'])} "
            f"{interval(after['avg_auc']['ci'])}"
        )
    return (
        f'<section class="card {word.replace(" ", "-")}">'
        f"<h1>{_e(headline)}</h1>"
        f'<p class="lift">Paper\'s average AUC difference: {_e("; ".join(lifts))}</p>'
        f'<p class="meta">Experiment {_e(report["experiment"])}: {_e(status_line(report))}. '
        f"Warm-up: {_e(describe_rule(steady['rule']))}.</p></section>"
    )


def _verdict_rows(report: dict[str, Any], arm: str) -> list[str]:
    rows = []
    pooled = {a: _headline(b) for a, b in report["arms"].items()}
    blocks = [("all clicks", pooled, report["comparisons"][arm])]
    if report["steady"]["comparisons"].get(arm):
        blocks.append(
            ("after warm-up", report["steady"]["arms"], report["steady"]["comparisons"][arm])
        )
    for scope, figures, c in blocks:
        for metric, key, d in (
            ("average AUC", "avg_auc", c["avg_auc"]),
            ("overall AUC", "auc", c),
            ("log loss", "log_loss", c["log_loss"]),
        ):
            diff = d.get("auc_diff", d.get("diff"))
            rows.append(
                f'<tr><td class="name">{_e(scope)}</td><td class="name">{_e(metric)}</td>'
                + _num(c["n"], f"{c['n']:,}")
                + _num(figures[report["control"]][key], plain(figures[report["control"]][key]))
                + _num(figures[arm][key], plain(figures[arm][key]))
                + _num(diff, signed(diff))
                + f"<td>{_e(interval(d['ci']))}</td>"
                + _num(d["p_value"], p_value(d["p_value"]))
                + f'<td class="{d["verdict"]}">{_e(d["verdict"])}</td></tr>'
            )
    return rows


def _headline(block: dict[str, Any]) -> dict[str, Any]:
    """The verdict table's figures of an arm block of the pooled report."""
    o = block["overall"]
    return {"auc": o["auc"], "avg_auc": block["avg_auc"], "log_loss": o["log_loss"]}


def _arms_table(report: dict[str, Any]) -> str:
    rows = []
    for arm, b in report["arms"].items():
        o = b["overall"]
        role = "control" if arm == report["control"] else "arm"
        rows.append(
            f'<tr><td class="name">{_e(arm)}</td><td class="name">{_e(role)}</td>'
            f'<td class="name">{_e(b["run"])}</td><td class="name">{_e(b.get("model") or "-")}</td>'
            + _num(o["n"], f"{o['n']:,}")
            + _num(o["positives"], f"{o['positives']:,}")
            + _num(b["avg_auc"], plain(b["avg_auc"]))
            + _num(o["auc"], plain(o["auc"]))
            + _num(o["log_loss"], plain(o["log_loss"]))
            + _num(o["calibration"], plain(o["calibration"], 3))
            + _num(report["unscored"][arm], f"{report['unscored'][arm]:,}")
            + "</tr>"
        )
    head = ["arm", "role", "run", "model", "clicks", "conversions", "average AUC",
            "overall AUC", "log loss", "calibration", "not scored"]  # fmt: skip
    return _table("arms", head, rows, names=4)


def _domain_table(report: dict[str, Any], arm: str) -> str:
    c, control = report["comparisons"][arm], report["control"]
    rows = []
    for key, kind in KINDS:
        figures = report["arms"][control][key]
        mine = report["arms"][arm][key]
        names = short_labels(figures)
        for value, f in figures.items():
            d = c["per_domain"].get(f"{kind}={value}", {"auc_diff": None, "ci": [None, None],
                                                         "p_adjusted": None})  # fmt: skip
            auc_arm = mine.get(value, {}).get("auc")
            rows.append(
                f'<tr><td class="name">{kind}</td>'
                f'<td class="name"><code title="{_e(value)}">'
                f"{_e(domain_name(kind, value, names[value]))}</code></td>"
                + _num(f["n"], f"{f['n']:,}")
                + _num(f["positives"], f"{f['positives']:,}")
                + _num(f["auc"], plain(f["auc"]))
                + _num(auc_arm, plain(auc_arm))
                + _num(d["auc_diff"], signed(d["auc_diff"]))
                + f"<td>{_e(interval(d['ci']))}</td>"
                + _num(d.get("p_adjusted"), p_value(d.get("p_adjusted")))
                + "</tr>"
            )
    head = ["column", "domain", "clicks", "conversions", f"AUC {control}", f"AUC {arm}",
            "difference", "95% interval", "q"]  # fmt: skip
    return _table("domains", head, rows, names=2)


def _snapshot_table(report: dict[str, Any]) -> str:
    rows = []
    for arm, b in report["arms"].items():
        for s in b["snapshots"]:
            examples = "-" if s["examples"] is None else f"{s['examples']:,} ({s['counted']})"
            rows.append(
                f'<tr><td class="name">{_e(arm)}</td>'
                + _num(s["version"], f"v{s['version']}")
                + _num(s["examples"], examples)
                + f'<td class="name">{_e(format_event_time(s["watermark"]))}</td>'
                + _num(s["n"], f"{s['n']:,}")
                + _num(s["auc"], plain(s["auc"]))
                + f"<td>{_e(interval(s['auc_ci']))}</td></tr>"
            )
    head = ["arm", "snapshot", "examples", "serving from", "clicks", "AUC", "95% interval"]
    return _table("snapshots", head, rows)


def _srm(report: dict[str, Any]) -> str:
    srm = report["srm"]
    users = ", ".join(f"{a} {n:,}" for a, n in srm["users"].items())
    verdict = (
        '<span class="bad">MISMATCH: the assignment or logging is broken; do not trust the '
        "comparison</span>"
        if srm["mismatch"]
        else "ok"
    )
    return (
        f"<p>Sample ratio: users per arm {_e(users)}; chi-square p = {_e(p_value(srm['p_value']))} "
        f"(a mismatch is p below {srm['alpha']:g}): {verdict}.</p>"
    )


def _figure(svg: str | None, how: str) -> str:
    if svg is None:
        return ""
    return f"<figure>{svg}<figcaption>{_e(HOW[how])}</figcaption></figure>"


def render_html(report: dict[str, Any]) -> str:
    """The whole report page."""
    name = _e(report["experiment"])
    arms = [a for a in report["comparisons"]]
    parts = [_card(report, arm) for arm in arms]
    for arm in arms:
        parts.append(f"<h2>Verdict: {_e(arm)} against {_e(report['control'])}</h2>")
        parts.append(f'<p class="how">{_e(HOW["verdict"])}</p>')
        head = ["clicks", "metric", "paired n" if report["shadow"] else "n",
                report["control"], arm, "difference", "95% interval", "p", "verdict"]  # fmt: skip
        parts.append(_table("verdict", head, _verdict_rows(report, arm), names=2))
    parts += ["<h2>Arms</h2>", f'<p class="how">{_e(HOW["arms"])}</p>', _arms_table(report)]
    parts.append(_srm(report))
    for arm in arms:
        parts.append(f"<h2>Per domain: {_e(arm)} against {_e(report['control'])}</h2>")
        parts.append(f'<p class="how">{_e(HOW["domains"])}</p>')
        parts.append(_domain_table(report, arm))
    plots = [
        _figure(report_plots.auc_over_time(report), "time"),
        _figure(report_plots.reliability(report), "calibration"),
        _figure(report_plots.snapshots(report), "snapshots"),
    ]
    for arm in arms:
        plots.append(_figure(report_plots.sequence(report, arm), "sequence"))
        plots.append(_figure(report_plots.forest(report, arm), "forest"))
    parts += ["<h2>Plots</h2>", f'<div class="plots">{"".join(plots)}</div>']
    parts += [
        "<h2>Serving snapshots</h2>",
        f'<p class="how">{_e(HOW["snapshots"])}</p>',
        _snapshot_table(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>mmn experiment {name}</title><style>{STYLE}</style></head><body>"
        f"{''.join(parts)}<script>{SCRIPT}</script></body></html>\n"
    )
