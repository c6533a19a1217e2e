"""`mmn join`: the Faust joiner, labeling impressions, clicks and conversions in event time.

    mmn join --bootstrap 127.0.0.1:9092 --method vanilla --observation-window 1h \\
        --attribution-window 30d --batch-size 1024 --workers 2 --until-end

Runs N worker processes (streaming.joiner_app) sharing the source partitions; stops them
on Ctrl-C / SIGTERM (SIGTERM, then SIGKILL after a grace period, by PID), or with
`--until-end` once every partition's end-of-stream mini-batch is out.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from pathlib import Path

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.options import add_options, build, duration_s
from ops.errors import ConfigError
from ops.training import delayed
from ops.training.learner import LearnerConfig
from streaming.events import format_event_time
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import EndWatcher, JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.partition_joiner import BatchConfig
from streaming.progress import ProgressLine


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
    # The label policy follows from the delayed-feedback method (ops.training.delayed), which
    # `mmn train --method` must name too: one option, one default, for both.
    method = add_options(parser, LearnerConfig, only=("method",))
    labels = add_options(
        parser.add_argument_group("labels (event-time windows)"),
        LabelConfig,
        skip=("policy", "final_copy"),
    )
    batches = add_options(
        parser.add_argument_group("mini-batches"), BatchConfig, flags={"max_span_s": "batch-span"}
    )
    joiner = add_options(parser, JoinerConfig, only=("app_id", "partitions"))
    parser.set_defaults(func=run, options=(joiner, method, labels, batches))


def joiner_config(args: argparse.Namespace, bootstrap: str) -> JoinerConfig:
    """The joiner's config from the command line; invalid values raise ConfigError."""
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    joiner, method, windows, batches = args.options
    labels = delayed.get(args.method).labels(build(args, windows))
    return build(args, joiner, bootstrap=bootstrap, labels=labels, batches=build(args, batches))


def progress_printer(every_s: float = 2.0) -> Callable[[EndWatcher], None]:
    """Prints `progress rows=N rows_per_s=R ended=K/P watermark=ISO` every `every_s` seconds."""
    line = ProgressLine(lambda text: print(f"progress {text}", flush=True), unit="rows",
                        every_s=every_s)  # fmt: skip

    def show(watcher: EndWatcher) -> None:
        if line.due(force=watcher.done):
            line.emit(
                watcher.rows,
                ended=f"{len(watcher.ended)}/{watcher.config.partitions}",
                watermark=format_event_time(watcher.watermark),
            )

    return show


def run(args: argparse.Namespace) -> int:
    # SIGTERM as Ctrl-C: either way the workers are stopped on the way out, --until-end included.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        config = joiner_config(args, bootstrap)
        create_joiner_topics(config)
        with JoinerWorkers(config, log_dir=args.log_dir).start(args.workers) as workers:
            print(
                f"joiner: {args.workers} worker(s) on {bootstrap}, method {args.method}, "
                f"logs in {args.log_dir}",
                flush=True,
            )
            started = time.monotonic()
            if args.until_end:
                watcher = workers.wait_for_end(args.timeout or float("inf"), progress_printer())
                print(
                    f"joiner: end of stream on all {config.partitions} partitions after "
                    f"{time.monotonic() - started:.1f}s; {watcher.rows:,} rows in mini-batches"
                )
                return 0
            try:
                while True:
                    workers.check_alive()
                    time.sleep(1.0)
            except KeyboardInterrupt:
                pass
    return 0
