"""`mmn report show EXPERIMENT` and `mmn report compare EXP_A EXP_B`: A/B reports from the registry.

    mmn report show mmn-vs-esmm                 # Table 3 layout and the comparisons
    mmn report show mmn-vs-esmm --json          # the report as JSON (NaN as null)
    mmn report show mmn-vs-esmm --html r.html   # one self-contained file with plots
    mmn report compare exp-wait exp-fake-negative

Reports are computed from the stored rows, so they can be read while `mmn evaluate` runs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ops.errors import EvaluationError
from ops.evaluation.report import json_safe, load_report
from ops.evaluation.report_html import render_html
from ops.evaluation.report_text import format_compare, format_report
from ops.store.database import DEFAULT_URL, open_registry


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="A/B experiment reports")
    actions = report.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the report of one experiment")
    show.add_argument("experiment", metavar="EXPERIMENT")
    show.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML")
    _common(show)
    show.set_defaults(func=run_show)
    compare = actions.add_parser("compare", help="two experiments side by side")
    compare.add_argument("experiments", nargs=2, metavar="EXPERIMENT")
    _common(compare)
    compare.set_defaults(func=run_compare)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_URL, help=f"registry URL (default {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run_show(args: argparse.Namespace) -> int:
    report = load_report(open_registry(args.db), args.experiment)
    if args.html is not None:
        tmp = args.html.with_name(f".{args.html.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(render_html(report), encoding="utf-8")
            os.replace(tmp, args.html)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EvaluationError(f"cannot write the HTML report to {args.html}: {exc}") from exc
    if args.json:
        print(json.dumps(json_safe(report), indent=2))
    else:
        print(format_report(report))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    Session = open_registry(args.db)
    a, b = (load_report(Session, name) for name in args.experiments)
    if args.json:
        print(json.dumps(json_safe({"experiments": [a, b]}), indent=2))
    else:
        print(format_compare(a, b))
    return 0
