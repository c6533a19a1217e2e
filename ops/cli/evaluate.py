"""`mmn evaluate`: the streaming A/B evaluator daemon (see ops.evaluation.evaluator).

    mmn evaluate --experiment mmn-vs-esmm --arm control=esmm-a --arm treatment=mmn-a \\
        --shadow --window 1d --bootstrap 127.0.0.1:9092 --until-end \\
        --export-predictions out/predictions.csv

Options left out take the defaults of EvaluatorConfig; `mmn report show NAME` reads the
results while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any

from ops.cli.train import duration_s
from ops.errors import ConfigError
from ops.evaluation.evaluator import Evaluator, EvaluatorConfig
from ops.evaluation.export import export_predictions
from ops.store.database import DEFAULT_URL, open_registry
from ops.training.kafka_io import KafkaSource
from ops.training.trainer import stop_on_signals
from streaming.minibatch import decode_minibatch
from streaming.topics import TopicNames

DEFAULTS = {f.name: f.default for f in dataclasses.fields(EvaluatorConfig)}


def _arm(text: str) -> tuple[str, str]:
    name, sep, run = text.partition("=")
    if not sep or not name or not run:
        raise argparse.ArgumentTypeError(f"--arm takes NAME=RUN, got {text!r}")
    return name, run


def _split(text: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(w) for w in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--split takes weights like 50/50, got {text!r}"
        ) from None
    return weights


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score arms with their serving snapshots against final labels (A/B)"
    )
    p.add_argument("--experiment", required=True, help="experiment name in the registry")
    p.add_argument("--arm", type=_arm, action="append", required=True, metavar="NAME=RUN",
                   help="an arm and the training run it serves (repeat; one is the control)")  # fmt: skip
    p.add_argument("--split", type=_split, help="traffic weights in --arm order (default equal)")
    p.add_argument("--control", help=f"the arm compared against (default {DEFAULTS['control']})")
    p.add_argument("--shadow", action="store_true", default=None,
                   help="every arm also scores all traffic (paired comparisons)")  # fmt: skip
    p.add_argument("--window", type=duration_s, dest="window_s", metavar="D",
                   help=f"report window in event time (default {DEFAULTS['window_s']}s)")  # fmt: skip
    p.add_argument("--salt", help="salt of the user hash (default: the experiment name)")
    p.add_argument("--observation-window", type=duration_s, dest="observation_window_s",
                   metavar="D", help="the joiner's O (default 1h)")  # fmt: skip
    p.add_argument("--attribution-window", type=duration_s, dest="attribution_window_s",
                   metavar="D", help="the joiner's A (default 30d)")  # fmt: skip
    p.add_argument(
        "--flush-rows", type=int, help=f"final clicks per batch (default {DEFAULTS['flush_rows']})"
    )
    p.add_argument("--flush-every", type=duration_s, dest="flush_every_event_s", metavar="D",
                   help="seal a batch when event time enters a new window of D (default 1h)")  # fmt: skip
    p.add_argument("--until-end", action="store_true", default=None,
                   help="stop after the stream's end, once every click is written")  # fmt: skip
    p.add_argument("--idle-timeout", type=float, dest="idle_timeout_s", metavar="SECONDS")
    p.add_argument("--snapshot-timeout", type=float, dest="snapshot_timeout_s", metavar="SECONDS",
                   help="give up when a serving snapshot stays undetermined this long")  # fmt: skip
    p.add_argument("--progress-every", type=float, dest="progress_every_s", metavar="SECONDS")
    p.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap address (required)")
    p.add_argument("--topic", default=TopicNames().minibatches, help="mini-batch topic")
    p.add_argument("--db", default=DEFAULT_URL, help=f"registry URL (default {DEFAULT_URL})")
    p.add_argument("--export-predictions", type=Path, metavar="FILE",
                   help="write every scored example as CSV when the evaluator stops")  # fmt: skip
    p.set_defaults(func=run)


def evaluator_config(args: argparse.Namespace) -> EvaluatorConfig:
    """The config of the options given; the others keep EvaluatorConfig's defaults."""
    given: dict[str, Any] = {
        name: value
        for name in DEFAULTS
        if name not in ("experiment", "arms") and (value := getattr(args, name, None)) is not None
    }
    return EvaluatorConfig(experiment=args.experiment, arms=tuple(args.arm), **given)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("kafka", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if args.bootstrap is None:
        raise ConfigError(
            "mmn evaluate needs --bootstrap HOST:PORT: the broker the joiner and trainers use"
        )
    stop = stop_on_signals()
    config = evaluator_config(args)
    Session = open_registry(args.db)
    with contextlib.ExitStack() as stack:
        source = KafkaSource(args.bootstrap, args.topic)
        stack.callback(source.close)
        evaluator = Evaluator(
            config, Session=Session, source=source, decode=decode_minibatch, stop=stop
        )
        outcome = evaluator.run()
    print(
        f"experiment {config.experiment}: stopped ({outcome.reason}), "
        f"{outcome.rows_written} rows written in this process; `mmn report show "
        f"{config.experiment}` for the report"
    )
    if args.export_predictions is not None:
        rows = export_predictions(Session, config.experiment, args.export_predictions)
        print(f"{rows} scored examples written to {args.export_predictions}")
    return 0
