"""`mmn join`: the Faust joiner, labeling impressions, clicks and conversions in event time.

    mmn join --bootstrap 127.0.0.1:9092 --policy fake-negative --observation-window 1h \\
        --attribution-window 30d --batch-size 1024 --workers 2 --until-end

Runs N worker processes (streaming.joiner_app) sharing the source partitions; stops them
on Ctrl-C / SIGTERM (SIGTERM, then SIGKILL after a grace period, by PID), or with
`--until-end` once every partition's end-of-stream mini-batch is out.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import threading
import time
from functools import partial
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.train import duration_s
from ops.errors import ConfigError
from ops.training.telemetry import format_event_time, serve_metrics
from streaming.errors import StreamingError
from streaming.health import BrokerWatch
from streaming.join_monitor import JoinMonitor
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, SupervisionConfig, create_joiner_topics
from streaming.labels import POLICIES, LabelConfig
from streaming.partition_joiner import BatchConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "join", help="label impressions/clicks/conversions in event time; emit mini-batches"
    )
    add_bootstrap_argument(parser)
    parser.add_argument("--policy", choices=POLICIES, default="fake-negative")
    windows = parser.add_argument_group("event-time windows (90, 15m, 1h, 30d)")
    windows.add_argument("--observation-window", type=duration_s, default=3600, metavar="D")
    windows.add_argument("--attribution-window", type=duration_s, default=30 * 86400, metavar="D")
    windows.add_argument("--click-window", type=duration_s, default=1800, metavar="D")
    windows.add_argument("--allowed-lateness", type=duration_s, default=0, metavar="D")
    windows.add_argument(
        "--max-ahead",
        type=duration_s,
        default=LabelConfig().max_ahead_s,
        metavar="D",
        help="an event further ahead of its topic partition's clock is implausible-time (1d)",
    )
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
        "--max-restarts",
        type=int,
        default=SupervisionConfig().max_restarts,
        help="worker restarts allowed before the joiner exits non-zero",
    )
    parser.add_argument(
        "--broker-timeout",
        type=duration_s,
        default=int(SupervisionConfig().broker_timeout_s),
        metavar="D",
        help="exit non-zero after the broker has not answered this long (default 5m)",
    )
    parser.add_argument(
        "--progress-every", type=float, default=10.0, metavar="SECONDS", help="progress lines"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on 127.0.0.1"
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
    if args.workers < 1:
        raise ConfigError(f"--workers is {args.workers}; it must be at least 1")
    try:
        labels = LabelConfig(
            policy=args.policy,
            observation_window_s=args.observation_window,
            attribution_window_s=args.attribution_window,
            click_window_s=args.click_window,
            allowed_lateness_s=args.allowed_lateness,
            max_ahead_s=args.max_ahead,
        )
        return JoinerConfig(
            bootstrap=bootstrap,
            app_id=args.app_id,
            partitions=args.partitions,
            labels=labels,
            batches=BatchConfig(batch_size=args.batch_size, max_span_s=args.batch_span),
        )
    except StreamingError as exc:
        raise ConfigError(str(exc)) from exc


class JoinTelemetry:
    """`mmn join`'s progress line and its Prometheus metrics on 127.0.0.1 (with --metrics-port)."""

    def __init__(self, port: int | None, every_s: float) -> None:
        self.every_s = every_s
        self._next = 0.0
        self.registry = CollectorRegistry()
        gauge = partial(Gauge, registry=self.registry)
        self.events_in = gauge("mmn_joiner_events_in", "Source messages committed by the joiner")
        self.examples = gauge("mmn_joiner_examples", "Examples out in mini-batches (deduped)")
        self.deadletters = gauge(
            "mmn_joiner_deadletters", "Dead letters by reason (deduped)", ["reason"]
        )
        self.watermark = gauge(
            "mmn_joiner_watermark_seconds",
            "Event time of the partition's last batch",
            ["partition"],
        )
        self.alive = gauge("mmn_joiner_workers_alive", "Worker processes running")
        self.restarts = gauge("mmn_joiner_worker_restarts", "Worker restarts so far")
        self.broker_up = gauge("mmn_joiner_broker_up", "1 while the broker answers")
        self.unreachable = gauge(
            "mmn_joiner_broker_unreachable_seconds", "How long the broker has not answered"
        )
        self.server = None if port is None else serve_metrics(self.registry, port)

    def update(
        self, monitor: JoinMonitor, workers: JoinerWorkers, watch: BrokerWatch, force: bool = False
    ) -> None:
        """Refresh the metrics; print the progress line when it is due (or forced)."""
        alive = sum(p.poll() is None for p in workers.processes)
        self.events_in.set(monitor.events_in or 0)
        self.examples.set(monitor.rows)
        for reason, n in monitor.deadletters.items():
            self.deadletters.labels(reason=reason).set(n)
        for partition, ts in monitor.watermarks.items():
            self.watermark.labels(partition=str(partition)).set(ts)
        self.alive.set(alive)
        self.restarts.set(workers.restarts)
        self.broker_up.set(int(watch.up))
        self.unreachable.set(watch.unreachable_s)
        if not force and time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every_s
        letters = ",".join(f"{r}:{n}" for r, n in sorted(monitor.deadletters.items())) or "0"
        marks = ",".join(
            f"p{p}={format_event_time(monitor.watermarks.get(p))}"
            for p in range(workers.config.partitions)
        )
        events = "-" if monitor.events_in is None else f"{monitor.events_in:,}"
        print(
            f"join: events_in={events} examples={monitor.rows:,} deadletters={letters} "
            f"watermark {marks} workers={alive}/{len(workers.processes)} "
            f"restarts={workers.restarts} broker={watch.status()}",
            flush=True,
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    supervision = SupervisionConfig(
        max_restarts=args.max_restarts,
        broker_timeout_s=args.broker_timeout,
        progress_every_s=args.progress_every,
    )
    with bootstrap_or_embedded(args.bootstrap) as bootstrap, contextlib.ExitStack() as stack:
        config = joiner_config(args, bootstrap)
        telemetry = JoinTelemetry(args.metrics_port, supervision.progress_every_s)
        stack.callback(telemetry.close)
        create_joiner_topics(config)
        workers = JoinerWorkers(config, log_dir=args.log_dir, supervision=supervision)
        stack.enter_context(workers)
        workers.start(args.workers)
        watch = BrokerWatch(
            bootstrap,
            timeout_s=supervision.broker_timeout_s,
            on_change=lambda line: print(f"joiner: {line}", flush=True),
        ).start()
        stack.callback(watch.close)
        monitor = JoinMonitor(config)
        stack.callback(monitor.close)
        print(
            f"joiner: {args.workers} worker(s) on {bootstrap}, policy {args.policy}, "
            f"logs in {args.log_dir}",
            flush=True,
        )
        started = time.monotonic()

        def tick(notes: list[str]) -> None:
            for note in notes:
                print(f"joiner: {note}", flush=True)
            watch.raise_if_expired("mmn join")
            telemetry.update(monitor, workers, watch)

        with contextlib.suppress(KeyboardInterrupt):
            workers.follow(
                monitor,
                until_end=args.until_end,
                timeout_s=args.timeout or math.inf,
                stop=stop,
                tick=tick,
            )
        telemetry.update(monitor, workers, watch, force=True)
        if monitor.done:
            print(
                f"joiner: end of stream on all {config.partitions} partitions after "
                f"{time.monotonic() - started:.1f}s; {monitor.rows:,} rows in mini-batches"
            )
    return 0
