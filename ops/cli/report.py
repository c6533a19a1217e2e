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

import dataclasses
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import tyro

from ops.cli.outputs import RegistryUrl
from ops.errors import EvaluationError, RegistryError
from ops.evaluation.report import json_safe, load_report
from ops.evaluation.report_html import render_html
from ops.evaluation.report_text import format_compare, format_report
from ops.evaluation.report_verdict import ReportConfig
from ops.options.typed import Entry, offered
from ops.options.values import OutputFile, option_type
from ops.store.database import DEFAULT_URL, open_registry
from ops.store.experiments import (
    LIVE_WITHIN_S,
    delete_experiment,
    get_experiment,
    last_heard,
)


def event_date(text: str) -> int:
    """A UTC date or date-time (2020-10-01, 2020-10-01T12:00) as seconds."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date like 2020-10-01 or 2020-10-01T12:00 (UTC)"
        ) from None
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


Experiment = tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="EXPERIMENT")]]
Settings = offered(ReportConfig, skip=("from_ts",))


@dataclass(frozen=True, kw_only=True)
class Reading:
    """What `report show` and `report compare` take."""

    db: RegistryUrl = DEFAULT_URL
    json: bool = False
    """print JSON"""
    settings: Annotated[ReportConfig, Settings]
    from_date: Annotated[
        int | None, option_type("DATE", event_date), tyro.conf.arg(name="from")
    ] = None
    """steady-state verdict on clicks from this UTC date on (replaces --warmup-examples)"""

    def report_config(self) -> ReportConfig:
        return dataclasses.replace(self.settings, from_ts=self.from_date)


@dataclass(frozen=True, kw_only=True)
class Show(Reading):
    """The report of one experiment."""

    experiment: Experiment
    html: OutputFile = None
    """also write a self-contained HTML"""


@dataclass(frozen=True, kw_only=True)
class Compare(Reading):
    """Two experiments side by side."""

    experiments: tyro.conf.Positional[
        Annotated[tuple[str, str], tyro.conf.arg(metavar="EXPERIMENT EXPERIMENT")]
    ]


@dataclass(frozen=True, kw_only=True)
class Delete:
    """Remove an experiment and its predictions (the refusal rule: DELETE_RULE)."""

    experiment: Experiment
    db: RegistryUrl = DEFAULT_URL
    force: bool = False
    """remove it even while its evaluator looks alive"""


Delete.__doc__ = (  # its --help: the rule with the figure it uses
    "Remove an experiment and its predictions. Refused (exit 2) while its status is "
    f"`running` and its evaluator wrote within the last {LIVE_WITHIN_S} s (a running "
    "evaluator writes every 10 s); a `running` experiment silent for longer had its "
    "evaluator killed. --force removes it anyway."
)


def run_show(args: Show) -> int:
    settings = args.report_config()
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


def run_compare(args: Compare) -> int:
    settings = args.report_config()
    Session = open_registry(args.db, create=False)
    a, b = (load_report(Session, name, settings) for name in args.experiments)
    if args.json:
        print(json.dumps(json_safe({"experiments": [a, b]}), indent=2))
    else:
        print(format_compare(a, b, settings.width), end="")
    return 0


def run_delete(args: Delete) -> int:
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


ENTRIES = {
    ("report", "show"): Entry("the report of one experiment", Show, run_show),
    ("report", "compare"): Entry("two experiments side by side", Compare, run_compare),
    ("report", "delete"): Entry("remove an experiment and its predictions", Delete, run_delete),
}
