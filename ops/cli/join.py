"""`mmn join`: the Faust joiner, labeling impressions, clicks and conversions in event time.

    mmn join --bootstrap 127.0.0.1:9092 --policy fake-negative --observation-window 1h \\
        --attribution-window 30d --batch-size 1024 --workers 2 --until-end

Runs N worker processes (streaming.joiner_app) sharing the source partitions; stops them
on Ctrl-C / SIGTERM (SIGTERM, then SIGKILL after a grace period, by PID), or with
`--until-end` once every partition's end-of-stream mini-batch is out.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.options import add_options, build, duration_s
from ops.errors import ConfigError
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.partition_joiner import BatchConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join", help="label impressions/clicks/conversions in event time; emit mini-batches"
    )
    add_bootstrap_argument(parser)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--log-dir", type=Path, default=Path("runs/join"), help="worker logs")
    parser.add_argument(
        "--until-end",
        action="store_true",
        help="exit once every partition has processed its end-of-stream markers",
    )
    parser.add_argument(
        "--timeout",
        type=duration_s,
        default=None,
        metavar="DURATION",
        help="with --until-end: give up after this wall-clock time",
    )
    labels = add_options(parser.add_argument_group("labels (event-time windows)"), LabelConfig)
    batches = add_options(
        parser.add_argument_group("mini-batches"), BatchConfig, flags={"max_span_s": "batch-span"}
    )
    joiner = add_options(parser, JoinerConfig, only=("app_id", "partitions"))
    parser.set_defaults(func=run, options=(joiner, labels, batches))


def joiner_config(args: argparse.Namespace, bootstrap: str) -> JoinerConfig:
    """The joiner's config from the command line; invalid values raise ConfigError."""
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    joiner, labels, batches = args.options
    return build(
        args, joiner, bootstrap=bootstrap, labels=build(args, labels), batches=build(args, batches)
    )


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        config = joiner_config(args, bootstrap)
        create_joiner_topics(config)
        with JoinerWorkers(config, log_dir=args.log_dir).start(args.workers) as workers:
            print(
                f"joiner: {args.workers} worker(s) on {bootstrap}, policy {args.policy}, "
                f"logs in {args.log_dir}",
                flush=True,
            )
            started = time.monotonic()
            if args.until_end:
                watcher = workers.wait_for_end(args.timeout or float("inf"))
                print(
                    f"joiner: end of stream on all {config.partitions} partitions after "
                    f"{time.monotonic() - started:.1f}s; {watcher.rows:,} rows in mini-batches"
                )
                return 0
            try:
                while not stop.wait(1.0):
                    workers.check_alive()
            except KeyboardInterrupt:
                pass
    return 0
