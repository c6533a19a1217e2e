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
import threading
import time
from pathlib import Path

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.train import duration_s
from ops.errors import ConfigError
from ops.training import delayed
from ops.training.delayed import STREAM_METHODS
from ops.training.learner import LearnerConfig
from streaming.errors import StreamingError
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.partition_joiner import BatchConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join", help="label impressions/clicks/conversions in event time; emit mini-batches"
    )
    add_bootstrap_argument(parser)
    parser.add_argument(
        "--method",
        choices=STREAM_METHODS,
        default=LearnerConfig.method,
        help="delayed-feedback method whose labels to emit (ops.training.delayed); "
        "`mmn train --method` must name the same",
    )
    windows = parser.add_argument_group("event-time windows (90, 15m, 1h, 30d)")
    windows.add_argument("--observation-window", type=duration_s, default=3600, metavar="D")
    windows.add_argument("--attribution-window", type=duration_s, default=30 * 86400, metavar="D")
    windows.add_argument("--click-window", type=duration_s, default=1800, metavar="D")
    windows.add_argument("--allowed-lateness", type=duration_s, default=0, metavar="D")
    parser.add_argument("--batch-size", type=int, default=1024, help="examples per mini-batch")
    parser.add_argument(
        "--batch-span",
        type=duration_s,
        default=3600,
        metavar="D",
        help="most event time one mini-batch spans (default 1h)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per source topic")
    parser.add_argument("--app-id", default="mmn-joiner", help="Faust app id (consumer group)")
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
        metavar="D",
        help="with --until-end: give up after this wall-clock time",
    )
    parser.set_defaults(func=run)


def joiner_config(args: argparse.Namespace, bootstrap: str) -> JoinerConfig:
    """The joiner's config from the command line; invalid values raise ConfigError."""
    if args.workers < 1 or args.batch_size < 1 or args.partitions < 1:
        raise ConfigError(
            f"--workers ({args.workers}), --batch-size ({args.batch_size}) and --partitions "
            f"({args.partitions}) must be at least 1"
        )
    try:
        windows = LabelConfig(
            observation_window_s=args.observation_window,
            attribution_window_s=args.attribution_window,
            click_window_s=args.click_window,
            allowed_lateness_s=args.allowed_lateness,
        )
        labels = delayed.get(args.method).labels(windows)
    except StreamingError as exc:
        raise ConfigError(str(exc)) from exc
    return JoinerConfig(
        bootstrap=bootstrap,
        app_id=args.app_id,
        partitions=args.partitions,
        labels=labels,
        batches=BatchConfig(batch_size=args.batch_size, max_span_s=args.batch_span),
    )


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
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
