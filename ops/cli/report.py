"""`mmn report show|compare|delete`: A/B reports from the registry, and removing an experiment.

    mmn report show mmn-vs-esmm                 # verdict first, then per domain (100 columns)
    mmn report show mmn-vs-esmm --width 140     # longer domain names for a wider terminal
    mmn report show mmn-vs-esmm --from 2020-10-01   # steady state from an event date on
    mmn report show mmn-vs-esmm --json          # the report as JSON (NaN as null)
    mmn report show mmn-vs-esmm --html r.html   # one self-contained file with plots
    mmn report compare exp-wait exp-fake-negative
    mmn report delete old-experiment            # the experiment and its predictions

Reports are computed from the stored rows, so they can be read while `mmn evaluate` runs.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime, timedelta

from ops.cli.outputs import output_file
from ops.errors import EvaluationError, RegistryError
from ops.evaluation.report import json_safe, load_report
from ops.evaluation.report_html import render_html
from ops.evaluation.report_text import format_compare, format_report
from ops.evaluation.report_verdict import ReportConfig
from ops.options.configs import add_options, build
from ops.store.database import DEFAULT_URL, open_registry
from ops.store.experiments import (
    LIVE_WITHIN_S,
    delete_experiment,
    get_experiment,
    last_heard,
)


def event_date(text: str) -> int:
    """An argparse type: a UTC date or date-time (2020-10-01, 2020-10-01T12:00) as seconds."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date like 2020-10-01 or 2020-10-01T12:00 (UTC)"
        ) from None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="A/B experiment reports")
    actions = report.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the report of one experiment")
    show.add_argument("experiment", metavar="EXPERIMENT")
    show.add_argument(
        "--html", type=output_file, metavar="FILE", help="also write a self-contained HTML"
    )
    _common(show)
    show.set_defaults(func=run_show)
    compare = actions.add_parser("compare", help="two experiments side by side")
    compare.add_argument("experiments", nargs=2, metavar="EXPERIMENT")
    _common(compare)
    compare.set_defaults(func=run_compare)
    remove = actions.add_parser(
        "delete",
        help="remove an experiment and its predictions",
        description=(
            "Remove an experiment and its predictions. Refused (exit 2) while its status is "
            f"`running` and its evaluator wrote within the last {LIVE_WITHIN_S} s (a running "
            "evaluator writes every 10 s); a `running` experiment silent for longer had its "
            "evaluator killed. --force removes it anyway."
        ),
    )
    remove.add_argument("experiment", metavar="EXPERIMENT")
    remove.add_argument("--db", default=DEFAULT_URL, help=f"registry URL (default {DEFAULT_URL})")
    remove.add_argument(
        "--force", action="store_true", help="remove it even while its evaluator looks alive"
    )
    remove.set_defaults(func=run_delete)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=DEFAULT_URL, help=f"registry URL (default {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    options = add_options(parser, ReportConfig, skip=("from_ts",))
    parser.add_argument(
        "--from", dest="from_ts", type=event_date, metavar="DATE",
        help="steady-state verdict on clicks from this UTC date on (replaces --warmup-examples)",
    )  # fmt: skip
    parser.set_defaults(options=options)


def _settings(args: argparse.Namespace) -> ReportConfig:
    settings: ReportConfig = build(args, args.options, from_ts=args.from_ts)
    return settings


def run_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = load_report(open_registry(args.db, create=False), args.experiment, settings)
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
        print(format_report(report, settings.width), end="")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    settings = _settings(args)
    Session = open_registry(args.db, create=False)
    a, b = (load_report(Session, name, settings) for name in args.experiments)
    if args.json:
        print(json.dumps(json_safe({"experiments": [a, b]}), indent=2))
    else:
        print(format_compare(a, b, settings.width), end="")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    Session = open_registry(args.db, create=False)
    with Session.begin() as session:
        experiment = get_experiment(session, args.experiment)
        silent = datetime.now(UTC) - last_heard(experiment)
        if (
            experiment.status == "running"
            and silent < timedelta(seconds=LIVE_WITHIN_S)
            and not args.force
        ):
            raise RegistryError(
                f"experiment {args.experiment!r} is running (its evaluator wrote "
                f"{silent.total_seconds():.0f}s ago): stop its evaluator first, or --force"
            )
        removed = delete_experiment(session, experiment)
    print(f"experiment {args.experiment} deleted ({removed} predictions)")
    return 0
