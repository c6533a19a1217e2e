"""Table 3's text layout of an offline result: per-domain AUC, average, intervals against mmn."""

from __future__ import annotations

import math


def format_table(result: dict) -> str:
    """Table 3's layout: a row per model, per-type then per-scenario AUC columns, Avg, sets."""
    rows = dict(result["models"])
    if "oracle" in result:
        rows["oracle (truth)"] = result["oracle"]
    first = next(iter(rows.values()))
    type_cols, scen_cols = list(first["per_type"]), list(first["per_scenario"])
    header = ["model", *type_cols, *scen_cols, "Avg", "±std", "sets", "datasets", "lr"]
    intervals = any("ci" in r for r in rows.values())
    header += ["vs mmn", "95% CI"] if intervals else []
    lines = ["\t".join(header)]
    for name, r in rows.items():
        cells = [name]
        cells += [_fmt(r["per_type"][c]) for c in type_cols]
        cells += [_fmt(r["per_scenario"][c]) for c in scen_cols]
        cells += [_fmt(r["avg_auc"]), _fmt(r.get("avg_auc_std", math.nan))]
        cells += [str(r.get("param_sets", "")), str(r.get("datasets", ""))]
        cells.append(f"{r['lr']:g}" if "lr" in r else "")
        cells += _interval_cells(r) if intervals else []
        lines.append("\t".join(cells))
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"


def _interval_cells(r: dict) -> list[str]:
    # A difference whose interval holds 0 is marked "(ns)": not significant at 5%.
    if "ci" not in r:
        return ["", ""]
    lo, hi = r["ci"]
    mark = "" if r["significant"] else " (ns)"
    return [f"{r['auc_diff_vs_mmn']:+.4f}{mark}", f"[{lo:+.4f}, {hi:+.4f}]"]
