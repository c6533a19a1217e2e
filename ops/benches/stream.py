"""`mmn bench stream`: delayed-feedback methods under the streaming protocol (RI-AUC table).

See `ops.evaluation.stream` for the protocol. Prints a row per model and method: AUC,
PR-AUC, log loss, calibration, mean per-domain AUC (each averaged over the scored days),
the AUC of p_cvr alone, and RI-AUC.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path

from model import zoo
from ops.benches.offline import partial
from ops.errors import ConfigError
from ops.evaluation.stream import StreamConfig, run_stream
from ops.training import delayed
from simulator.criteo_search import CriteoSearchConfig, load_columns

COLUMNS = ("auc", "pr_auc", "log_loss", "calibration", "avg_domain_auc", "cvr_only_auc", "ri_auc")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream",
        help="pretrain on the first days, then learn each day's delayed labels and score the "
        "next day: AUC, PR-AUC, log loss, calibration and RI-AUC per model and method",
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="FILE", help="CriteoSearchData file"
    )
    parser.add_argument("--type-field", default=CriteoSearchConfig.type_field)
    parser.add_argument("--scenario-field", default=CriteoSearchConfig.scenario_field)
    parser.add_argument(
        "--models", default=",".join(StreamConfig.models), help="comma-separated model names"
    )
    parser.add_argument(
        "--methods",
        default=",".join(StreamConfig.methods),
        help="comma-separated delayed-feedback methods (vanilla and oracle give the RI-AUC)",
    )
    parser.add_argument("--rows", type=int, help="read only the first N lines")
    parser.add_argument("--pretrain-days", type=int, default=StreamConfig.pretrain_days)
    parser.add_argument("--days", type=int, help="score at most this many days")
    parser.add_argument("--batch-size", type=int, default=StreamConfig.batch_size)
    parser.add_argument("--lr", type=float, default=StreamConfig.lr, help="Adagrad rate")
    parser.add_argument(
        "--hidden", default=",".join(map(str, StreamConfig.hidden)), help="tower widths"
    )
    parser.add_argument("--buckets", type=int, default=StreamConfig.buckets)
    parser.add_argument(
        "--observation-window",
        type=int,
        default=StreamConfig.observation_window_s,
        metavar="SECONDS",
        help="the label logic's observation window",
    )
    parser.set_defaults(func=run)


def _names(text: str, known: Sequence[str], option: str) -> tuple[str, ...]:
    names = tuple(n for n in text.split(",") if n)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    return names


def config_of(args: argparse.Namespace) -> StreamConfig:
    """The benchmark's config from the command line; bad values raise ConfigError."""
    if args.pretrain_days < 1 or args.batch_size < 1 or (args.days is not None and args.days < 1):
        raise ConfigError("--pretrain-days, --days and --batch-size must be >= 1")
    try:
        hidden = tuple(int(w) for w in args.hidden.split(","))
    except ValueError:
        raise ConfigError(f"--hidden: not comma-separated widths: {args.hidden!r}") from None
    return StreamConfig(
        models=_names(args.models, zoo.names(), "--models"),
        methods=_names(args.methods, delayed.names(), "--methods"),
        pretrain_days=args.pretrain_days,
        days=args.days,
        batch_size=args.batch_size,
        lr=args.lr,
        hidden=hidden,
        buckets=args.buckets,
        observation_window_s=args.observation_window,
    )


def format_table(result: dict) -> str:
    """One tab-separated row per model and method."""
    lines = ["\t".join(("model", "method", *COLUMNS))]
    for model, entry in result["models"].items():
        for method, figures in entry["methods"].items():
            cells = [_fmt(figures.get(c)) for c in COLUMNS]
            lines.append("\t".join((model, method, *cells)))
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def run(args: argparse.Namespace) -> dict:
    config = config_of(args)
    search = CriteoSearchConfig(type_field=args.type_field, scenario_field=args.scenario_field)
    started = time.perf_counter()
    cols = load_columns(args.data, search, rows=args.rows)
    print(f"loaded {len(cols):,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    result = run_stream(
        cols, config, log=lambda line: print(line, flush=True), on_model=partial(args.json)
    )
    result["rows"] = len(cols)
    result["data"] = str(args.data)
    print(format_table(result))
    return result
