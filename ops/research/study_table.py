"""Markdown tables of ops/research/study.sh's results: Table 3 per cell, and the matrix vs mmn.

Usage: python -m ops.research.study_table OUT_DIR
Cells are `<optimizer>_<pair|add>_<skew|unif>.json` files of `mmn bench offline --json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CELLS = [
    f"{opt}_{pair}_{skew}"
    for skew in ("skew", "unif")
    for pair in ("pair", "add")
    for opt in ("adagrad-tf", "adagrad")
]


def _rank_table(cell: str, result: dict) -> list[str]:
    models = sorted(result["models"].items(), key=lambda kv: -kv[1]["avg_auc"])
    lines = [f"**{cell}**" + (" (partial)" if result.get("partial") else ""), ""]
    lines += [
        "| rank | model | Avg AUC | ± std | vs mmn | 95% CI | lr |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, (name, r) in enumerate(models, 1):
        diff, ci = r.get("auc_diff_vs_mmn"), r.get("ci")
        mark = "" if ci is None or r.get("significant") or name == "mmn" else " (ns)"
        cells = [f"{rank}{mark}", name, f"{r['avg_auc']:.4f}", f"{r['avg_auc_std']:.4f}"]
        cells += [
            f"{diff:+.4f}" if diff is not None else "",
            f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "",
        ]
        cells.append(f"{r['lr']:g}")
        lines.append("| " + " | ".join(cells) + " |")
    if "oracle" in result:
        lines.append(f"| | oracle (truth.tsv) | {result['oracle']['avg_auc']:.4f} | | | | |")
    return lines + [""]


def _matrix(results: dict[str, dict]) -> list[str]:
    cells = [c for c in CELLS if c in results]
    names = list(next(iter(results.values()))["models"])
    lines = ["| model | " + " | ".join(cells) + " |", "|---" * (len(cells) + 1) + "|"]
    for name in names:
        row = [name]
        for c in cells:
            r = results[c]["models"].get(name)
            if r is None:
                row.append("")
            elif name == "mmn":
                rank = 1 + sum(o["avg_auc"] > r["avg_auc"] for o in results[c]["models"].values())
                row.append(f"{r['avg_auc']:.4f} (rank {rank})")
            elif "ci" in r:
                sig = "*" if r["significant"] else ""
                row.append(f"{r['auc_diff_vs_mmn']:+.4f}{sig}")
            else:
                row.append("")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _first_and_significant(results: dict[str, dict]) -> list[str]:
    """Cells where mmn ranks first and every other model's interval lies below 0."""
    out = []
    for c, result in results.items():
        others = [r for n, r in result["models"].items() if n != "mmn" and "ci" in r]
        if others and all(r["ci"][1] < 0 for r in others):
            out.append(c)
    return out


def main(folder: Path) -> None:
    results = {
        c: json.loads((folder / f"{c}.json").read_text())
        for c in CELLS
        if (folder / f"{c}.json").exists()
    }
    for c, result in results.items():
        print("\n".join(_rank_table(c, result)))
    print("\n".join(_matrix(results)))
    first = _first_and_significant(results)
    print(f"\nmmn first with every other model's interval below 0: {', '.join(first) or 'none'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
