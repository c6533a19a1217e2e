"""An experiment report as text for a terminal: the verdict first, then one row per domain.

Top to bottom, every line at most `width` columns (100 by default):

- the header: experiment and status (what its evaluator recorded), mode, arms with their
  runs and models, how far the final labels reach;
- the verdict of each arm against control: the paper's average AUC, the overall AUC and
  the log loss with the difference, its 95% interval, p-value and one word (better, worse,
  no difference at 5%), on all clicks and after warm-up; calibration, clicks, conversions;
- the sample-ratio check with its threshold;
- per domain (conversion types, then display scenarios): clicks, conversions, each arm's
  AUC, the difference with its interval and the Benjamini-Hochberg q-value; hashed values
  shortened to a unique prefix, the full ones in a legend;
- each serving snapshot's AUC; the confidence sequence of the log-loss difference; drift.
"""

from __future__ import annotations

import math
import textwrap
from datetime import UTC, datetime
from typing import Any

from ops.evaluation.report_labels import (
    KINDS,
    domain_name,
    interval,
    p_value,
    plain,
    short_labels,
    signed,
)
from ops.evaluation.report_verdict import MIN_WIDTH, describe_rule
from streaming.events import format_event_time

WIDTH = 100  # the default; ReportConfig.width is the option


def _when(iso: str | None) -> str:
    if iso is None:
        return "at an unrecorded time"
    at = datetime.fromisoformat(iso)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def status_line(report: dict[str, Any]) -> str:
    """The experiment's status in words: running (last write), finished, stopped or failed."""
    status = report["status"]
    state = status["state"]
    if state == "running":
        heard = status.get("last_heard") or status.get("last_write")
        line = f"running (its evaluator last wrote {_when(heard)}"
        if heard is not None:
            silent = (datetime.now(UTC) - datetime.fromisoformat(heard)).total_seconds()
            if silent > status.get("live_within_s", math.inf):
                line += f"; silent for {silent / 60:.0f} min: it may have been killed"
        return line + ")"
    detail = f": {status['detail']}" if status.get("detail") else ""
    return f"{state} {_when(status.get('at'))}{detail}"


def _mode(report: dict[str, Any]) -> str:
    if report["shadow"]:
        return "shadow: every arm scores every click, compared on the same clicks (paired)"
    return "split traffic: each arm scores its own users (independent samples)"


def _header(report: dict[str, Any]) -> list[str]:
    arms = []
    for arm, block in report["arms"].items():
        role = ", control" if arm == report["control"] else ""
        arms.append(f"{arm} = run {block['run']} (model {block.get('model') or 'unknown'}{role})")
    scored = {a: b["overall"]["n"] for a, b in report["arms"].items()}
    unscored = sum(report["unscored"].values())
    counts = ", ".join(f"{a} {n:,}" for a, n in scored.items())
    return [
        f"experiment {report['experiment']}: {status_line(report)}",
        f"mode: {_mode(report)}",
        f"arms: {'; '.join(arms)}",
        f"clicks scored: {counts}; final labels up to {format_event_time(report['watermark'])}"
        + (f"; {unscored:,} arm-clicks before a first snapshot (not scored)" if unscored else ""),
    ]


def _columns(cells: list[str], widths: list[int], left: int = 1) -> str:
    """Cells padded to widths: the first `left` to the left, the rest to the right."""
    return "  ".join(
        c.ljust(w) if i < left else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def _verdict(report: dict[str, Any], arm: str) -> list[str]:
    control = report["control"]
    c, steady = report["comparisons"][arm], report["steady"]
    after = steady["comparisons"].get(arm)
    word = c["avg_auc"]["verdict"]
    title = f"{arm} vs {control}, paper's average AUC: {word} on all clicks"
    if after:
        title += f", {after['avg_auc']['verdict']} after warm-up"
    elif steady["rule"]["warmup_examples"] is not None or steady["rule"]["from"] is not None:
        title += "; none after warm-up yet"
    widths = [15, max(7, len(control)), max(7, len(arm)), 10, 20, 6, 13]
    lines = [
        title,
        _columns(["", control, arm, "difference", "95% interval", "p", "verdict"], widths),
    ]
    pooled = {a: _figures(b) for a, b in report["arms"].items()}
    scopes = [("all clicks", pooled, c)]
    if after:
        scopes.append(("after warm-up", steady["arms"], after))
    for scope, figures, comparison in scopes:
        paired = "paired" if report["shadow"] else "in both arms"
        lines.append(f"{scope} ({comparison['n']:,} clicks {paired})")
        for metric, key, d in (
            ("average AUC", "avg_auc", comparison["avg_auc"]),
            ("overall AUC", "auc", comparison),
            ("log loss", "log_loss", comparison["log_loss"]),
        ):
            diff = d.get("auc_diff", d.get("diff"))
            cells = [f"  {metric}", plain(figures[control][key]), plain(figures[arm][key]),
                     signed(diff), interval(d["ci"]), p_value(d["p_value"]), d["verdict"]]  # fmt: skip
            lines.append(_columns(cells, widths))
        for metric, key, show in (
            ("calibration", "calibration", lambda v: plain(v, 3)),
            ("conversions", "positives", lambda v: f"{v:,}"),
        ):
            cells = [f"  {metric}", show(figures[control][key]), show(figures[arm][key])]
            lines.append(_columns(cells, widths[:3]))
    lines.append(f"warm-up: {describe_rule(steady['rule'])}" + _counted(steady))
    return lines


def _counted(steady: dict[str, Any]) -> str:
    if steady["rule"]["warmup_examples"] is None or "seen" not in steady["counted"]:
        return ""
    return (
        " (examples trained where the registry records them; examples seen, which also "
        "count rows not yet trained on, for older snapshots)"
    )


def _figures(block: dict[str, Any]) -> dict[str, Any]:
    """The verdict's figures of a pooled arm block."""
    o = block["overall"]
    return {**o, "avg_auc": block["avg_auc"]}


def _srm(report: dict[str, Any]) -> str:
    srm = report["srm"]
    users = ", ".join(f"{a} {n:,}" for a, n in srm["users"].items())
    shares = "/".join(f"{w:.0%}" for w in srm["intended"].values())
    verdict = "MISMATCH: the assignment is broken" if srm["mismatch"] else "ok"
    return (
        f"sample ratio: chi-square p={p_value(srm['p_value'])} (mismatch below {srm['alpha']:g}):"
        f" {verdict}; users {users} (intended {shares})"
    )


def _domains(report: dict[str, Any], arm: str, width: int) -> tuple[list[str], dict[str, str]]:
    """The per-domain table of one comparison, and the shortened values it used."""
    control, c = report["control"], report["comparisons"][arm]
    numbers = [8, 7, max(7, len(control)), max(7, len(arm)), 10, 20, 6]
    budget = width - sum(numbers) - 2 * len(numbers)
    lines = [
        f"per domain: {arm} vs {control} (q: Benjamini-Hochberg adjusted p-value over all "
        "domains; below 0.05, at most 5% of such rows are false discoveries)"
    ]
    legend: dict[str, str] = {}
    for key, kind in KINDS:
        figures = report["arms"][control][key]
        if max((len(v) for v in figures), default=0) <= budget:
            names = {v: v for v in figures}
        else:
            names = short_labels(figures, longest=budget)
            legend.update({n: v for v, n in names.items() if n != v})
        labels = {v: domain_name(kind, v, names[v]) for v in figures}
        first = f"{'conversion type' if kind == 'type' else 'display scenario'}"
        widths = [max([len(first), *map(len, labels.values())]), *numbers]
        head = [first, "clicks", "conv", control, arm, "difference", "95% interval", "q"]
        lines.append(_columns(head, widths))
        for value, f in figures.items():
            d = c["per_domain"].get(f"{kind}={value}")
            mine = report["arms"][arm][key].get(value, {}).get("auc")
            cells = [labels[value], f"{f['n']:,}", f"{f['positives']:,}", plain(f["auc"]),
                     plain(mine), signed(d["auc_diff"]) if d else "-",
                     interval(d["ci"]) if d else "-", p_value(d["p_adjusted"]) if d else "-"]  # fmt: skip
            lines.append(_columns(cells, widths))
    return lines, legend


def _legend(legend: dict[str, str], width: int) -> list[str]:
    if not legend:
        return []
    entries = [
        f"{short:<{max(map(len, legend))}}  {full}" for short, full in sorted(legend.items())
    ]
    size = max(map(len, entries)) + 4
    per_line = max(1, (width + 4) // size)
    lines = ["domain values in full (each shortened to its shortest unique prefix above):"]
    for i in range(0, len(entries), per_line):
        lines.append("    ".join(e.ljust(size - 4) for e in entries[i : i + per_line]).rstrip())
    return lines


def _snapshots(report: dict[str, Any], width: int) -> list[str]:
    """Each arm's serving snapshots, arms side by side as far as the width allows."""
    widths = [4, 8, 16, 6, 6]
    block = sum(widths) + 2 * (len(widths) - 1)
    per_line = max(1, (width + 4) // (block + 4))
    arms = list(report["arms"].items())
    seen = any(s["counted"] == "seen" for _, b in arms for s in b["snapshots"])
    lines = [
        "serving snapshots: the AUC of the clicks each one scored; examples trained"
        + (" (* examples seen: the registry has no trained count)" if seen else "")
    ]
    for start in range(0, len(arms), per_line):
        group = arms[start : start + per_line]
        lines.append("    ".join(f"{arm:<{block}}" for arm, _ in group).rstrip())
        head = _columns(["snap", "examples", "serving from", "clicks", "AUC"], widths)
        lines.append("    ".join(f"{head:<{block}}" for _ in group).rstrip())
        for i in range(max(len(b["snapshots"]) for _, b in group)):
            cells = []
            for _, b in group:
                if i >= len(b["snapshots"]):
                    cells.append(" " * block)
                    continue
                s = b["snapshots"][i]
                examples = "-" if s["examples"] is None else f"{s['examples']:,}"
                examples += "*" if s["counted"] == "seen" else ""
                when = format_event_time(s["watermark"])[:16].replace("T", " ")
                row = _columns(
                    [f"v{s['version']}", examples, when, f"{s['n']:,}", plain(s["auc"])], widths
                )
                cells.append(f"{row:<{block}}")
            lines.append("    ".join(cells).rstrip())
    return lines


def _sequence(report: dict[str, Any], arm: str) -> list[str]:
    cs = report["comparisons"][arm].get("confidence_sequence")
    if not cs or not cs["t"]:
        return []
    return [
        f"log-loss difference {arm} - {report['control']}, anytime-valid 95% (may be read at "
        f"any moment of a running stream): {signed(cs['mean'][-1], 5)} "
        f"{interval([cs['lo'][-1], cs['hi'][-1]], 5)} after {cs['t'][-1]:,} clicks; "
        + ("excluded 0 at some point" if cs["ever_excludes_zero"] else "never excluded 0")
    ]


def _wrap(lines: list[str], width: int) -> list[str]:
    """Prose lines wrapped to width (tables are laid out to fit it already)."""
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
        else:
            indent = " " * (len(line) - len(line.lstrip()))
            out += textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent + "  ")
    return out


def format_report(report: dict[str, Any], width: int = WIDTH) -> str:
    """The whole report as text, no line longer than width (at least MIN_WIDTH)."""
    width = max(width, MIN_WIDTH)
    lines = [*_header(report), ""]
    for arm in report["comparisons"]:
        lines += [*_verdict(report, arm), ""]
    lines += [_srm(report), ""]
    legend: dict[str, str] = {}
    for arm in report["comparisons"]:
        table, used = _domains(report, arm, width)
        lines += [*table, ""]
        legend.update(used)
    lines += _legend(legend, width)
    lines += ["", *_snapshots(report, width), ""]
    for arm in report["comparisons"]:
        lines += _sequence(report, arm)
    for run, points in report["drift"].items():
        if points:
            lines.append(f"drift ({run}): {', '.join(format_event_time(t) for t in points[-5:])}")
    return "\n".join(_wrap(lines, width)).rstrip() + "\n"


def format_compare(a: dict[str, Any], b: dict[str, Any], width: int = WIDTH) -> str:
    """Two experiments in the same layout: their verdicts metric by metric, then per domain."""
    width = max(width, MIN_WIDTH)
    lines = [f"compare {a['experiment']} and {b['experiment']}"]
    for r in (a, b):
        arms = ", ".join(f"{arm} vs {r['control']}" for arm in r["comparisons"])
        lines.append(f"  {r['experiment']}: {arms}; {_mode(r).split(':')[0]}; {status_line(r)}")
    lines.append("")
    pairs = list(zip(a["comparisons"], b["comparisons"], strict=False))
    name = max(len(r["experiment"]) for r in (a, b))
    widths = [name + 2, 7, 7, 10, 20, 6, 13]
    lines.append(
        _columns(["", "control", "arm", "difference", "95% interval", "p", "verdict"], widths)
    )
    for scope in ("all clicks", "after warm-up"):
        for metric, key in (("average AUC", "avg_auc"), ("overall AUC", "auc"),
                            ("log loss", "log_loss")):  # fmt: skip
            lines.append(f"{metric}, {scope}")
            for r, arm in ((a, pairs[0][0]), (b, pairs[0][1])) if pairs else ():
                if scope == "all clicks":
                    c, figures = (
                        r["comparisons"][arm],
                        {x: _figures(y) for x, y in r["arms"].items()},
                    )
                else:
                    c, figures = r["steady"]["comparisons"].get(arm), r["steady"]["arms"]
                if not c:
                    lines.append(f"  {r['experiment']}: no clicks after warm-up")
                    continue
                d = c if key == "auc" else c[key]
                diff = d.get("auc_diff", d.get("diff"))
                cells = [f"  {r['experiment']}", plain(figures[r["control"]][key]),
                         plain(figures[arm][key]), signed(diff), interval(d["ci"]),
                         p_value(d["p_value"]), d["verdict"]]  # fmt: skip
                lines.append(_columns(cells, widths))
    lines.append("")
    lines += _compare_domains(a, b, pairs[0] if pairs else None, width)
    return "\n".join(_wrap(lines, width)).rstrip() + "\n"


def _compare_domains(
    a: dict[str, Any], b: dict[str, Any], arms: tuple[str, str] | None, width: int
) -> list[str]:
    if arms is None:
        return []
    lines = [
        f"per domain: AUC difference, 95% interval and q of {a['experiment']} "
        f"({arms[0]} vs {a['control']}) and {b['experiment']} ({arms[1]} vs {b['control']})"
    ]
    part = [7, 20, 6]
    budget = width - 2 * sum(part) - 2 * 2 * len(part)
    legend: dict[str, str] = {}
    for _kind_key, kind in KINDS:
        values = sorted(
            {d.split("=", 1)[1] for r, arm in ((a, arms[0]), (b, arms[1]))
             for d in r["comparisons"][arm]["per_domain"] if d.startswith(f"{kind}=")}
        )  # fmt: skip
        if max((len(v) for v in values), default=0) <= budget:
            names = {v: v for v in values}
        else:
            names = short_labels(values, longest=budget)
            legend.update({n: v for v, n in names.items() if n != v})
        labels = {v: domain_name(kind, v, names[v]) for v in values}
        first = "conversion type" if kind == "type" else "display scenario"
        widths = [max([len(first), *map(len, labels.values())]), *part, *part]
        lines.append(
            _columns([first, a["experiment"][:7], "", "q", b["experiment"][:7], "", "q"], widths)
        )
        for v in values:
            cells = [labels[v]]
            for r, arm in ((a, arms[0]), (b, arms[1])):
                d = r["comparisons"][arm]["per_domain"].get(f"{kind}={v}")
                cells += (
                    [signed(d["auc_diff"]), interval(d["ci"]), p_value(d["p_adjusted"])]
                    if d
                    else ["-", "-", "-"]
                )
            lines.append(_columns(cells, widths))
    return [*lines, "", *_legend(legend, width)]
