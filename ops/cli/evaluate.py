"""`mmn evaluate`: the streaming A/B evaluator daemon (see ops.evaluation.evaluator).

    mmn evaluate --experiment mmn-vs-esmm --arm control=esmm-a --arm treatment=mmn-a \\
        --shadow --window 1d --bootstrap 127.0.0.1:9092 --until-end \\
        --export-predictions out/predictions.csv

Options come from EvaluatorConfig (defaults and rules live there); `mmn report show NAME`
reads the results while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from ops.cli.outputs import output_file
from ops.errors import ConfigError
from ops.evaluation.experiment import EvaluatorConfig
from ops.options.configs import add_options, add_threads_option, build, port_number
from ops.options.device import add_device_option, resolve_device
from ops.store.defaults import DEFAULT_URL
from streaming.topics import TopicNames

if TYPE_CHECKING:  # imported where they run: `mmn evaluate --help` needs no torch
    from sqlalchemy.orm import Session, sessionmaker


def _arm(text: str) -> tuple[str, str]:
    name, sep, run = text.partition("=")
    if not sep or not name or not run:
        raise argparse.ArgumentTypeError(f"--arm takes NAME=RUN, got {text!r}")
    return name, run


def _split(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(w) for w in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--split takes weights like 50/50, got {text!r}"
        ) from None


def wait_for_runs(
    Session: sessionmaker[Session], config: EvaluatorConfig, stop: threading.Event
) -> None:
    """Refuse arms whose run is not in the registry, after --wait-for-runs if given.

    A mistyped run name would otherwise hold the evaluator with nothing scored.
    """
    from ops.store.database import list_runs

    limit = config.wait_for_runs_s
    deadline = time.monotonic() + (limit or 0.0)
    while True:
        with Session() as session:
            known = [run.name for run in list_runs(session)]
        missing = [f"{arm}={run}" for arm, run in config.arms if run not in known]
        if not missing or stop.is_set():
            return
        if time.monotonic() >= deadline:
            waited = "" if limit is None else f" after waiting {limit:g}s (--wait-for-runs)"
            raise ConfigError(
                f"--arm {', '.join(missing)}: no such run in the registry{waited}; known runs: "
                f"{', '.join(known) or 'none yet'} (give --wait-for-runs DURATION for a "
                "trainer that has not started yet)"
            )
        time.sleep(0.5)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score arms with their serving snapshots against final labels (A/B)"
    )
    parser.add_argument(
        "--arm", type=_arm, action="append", required=True, metavar="NAME=RUN",
        help="an arm and the training run it serves (repeat; one is the control)",
    )  # fmt: skip
    parser.add_argument(
        "--split", type=_split, default=(), metavar="W/W/...",
        help="traffic weights in --arm order, e.g. 50/50 (default: equal)",
    )  # fmt: skip
    parser.add_argument("--bootstrap", metavar="HOST:PORT", help="Kafka bootstrap (required)")
    parser.add_argument("--topic", default=TopicNames().minibatches, help="mini-batch topic")
    parser.add_argument("--db", default=DEFAULT_URL, help="registry URL")
    parser.add_argument(
        "--metrics-port",
        type=port_number,
        default=None,
        help="serve Prometheus metrics on 127.0.0.1",
    )
    parser.add_argument(
        "--export-predictions", type=output_file, metavar="FILE",
        help="write every scored example as CSV when the evaluator stops",
    )  # fmt: skip
    add_threads_option(parser)
    add_device_option(parser)
    options = add_options(
        parser,
        EvaluatorConfig,
        skip=("arms", "split", "poll_timeout_s"),
        flags={"flush_every_event_s": "flush-every"},
    )
    parser.set_defaults(func=run, options=options)


def run(args: argparse.Namespace) -> int:
    import torch

    from ops.cli.outputs import open_daemon_registry
    from ops.evaluation.evaluator import Evaluator
    from ops.evaluation.export import export_predictions
    from ops.evaluation.monitoring import EvaluatorMonitor
    from ops.streams.kafka_source import KafkaSource
    from ops.streams.signals import stop_on_signals
    from streaming.minibatch import decode_minibatch

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("kafka", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    config = build(args, args.options, arms=tuple(args.arm), split=args.split)
    if args.bootstrap is None:
        raise ConfigError(
            "mmn evaluate needs --bootstrap HOST:PORT: the joiner's and trainers' broker"
        )
    stop = stop_on_signals()
    Session = open_daemon_registry(args.db, "evaluate")
    if config.wait_for_runs_s is None:
        wait_for_runs(Session, config, stop)  # refused before the experiment is registered
    with contextlib.ExitStack() as stack:
        source = KafkaSource(args.bootstrap, args.topic)
        stack.callback(source.close)
        monitor = EvaluatorMonitor(config.experiment, args.metrics_port)
        stack.callback(monitor.close)
        evaluator = Evaluator(
            config,
            Session=Session,
            source=source,
            decode=decode_minibatch,
            stop=stop,
            monitor=monitor,
            device=str(device),
        )
        # Registered first, so that the trainers' retention keeps what its clicks will need.
        wait_for_runs(Session, config, stop)
        outcome = evaluator.run()
    print(
        f"experiment {config.experiment}: stopped ({outcome.reason}), {outcome.rows_written} "
        f"rows written by this process; `mmn report show {config.experiment}` for the report"
    )
    if args.export_predictions is not None:
        rows = export_predictions(Session, config.experiment, args.export_predictions)
        print(f"{rows} scored examples written to {args.export_predictions}")
    return 0
