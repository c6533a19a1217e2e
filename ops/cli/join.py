"""`mmn join`: the Faust joiner, labeling impressions, clicks and conversions in event time.

    mmn join --bootstrap 127.0.0.1:9092 --method vanilla --observation-window 1h \\
        --attribution-window 30d --batch-size 1024 --workers 2 --until-end

Runs N worker processes (streaming.joiner_app) sharing the source partitions; stops them
on Ctrl-C / SIGTERM (SIGTERM, then SIGKILL after a grace period, by PID), or with
`--until-end` once every partition's end-of-stream mini-batch is out. Its last line says
how it ended, the rows in mini-batches, the dead letters by reason and the restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from ops.cli.join_telemetry import JoinTelemetry
from ops.errors import ConfigError
from ops.options.bootstrap import Bootstrap, bootstrap_or_embedded
from ops.options.daemon import MetricsPort
from ops.options.typed import Entry, offered, replace
from ops.options.values import Count, OptionalSeconds
from ops.training import delayed
from ops.training.learner import LearnerConfig
from streaming.health import BrokerWatch
from streaming.join_monitor import JoinMonitor
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, SupervisionConfig, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.segments import BatchConfig

# The label policy follows from the delayed-feedback method (ops.training.delayed), which
# `mmn train --method` must name too: one option, one default, for both.
Method = offered(LearnerConfig, only=("method",))
Windows = offered(LabelConfig, skip=("policy", "final_copy"))
Batches = offered(BatchConfig)
Joiner = offered(JoinerConfig, only=("app_id", "partitions"), defaults={"bootstrap": ""})
Supervision = offered(SupervisionConfig, skip=("stop_grace_s",))


@dataclass(frozen=True, kw_only=True)
class JoinCommand:
    """Label impressions/clicks/conversions in event time; emit mini-batches."""

    bootstrap: Bootstrap = None
    workers: Count = 1
    """worker processes"""
    log_dir: Path = Path("runs/join")
    """worker logs"""
    until_end: bool = False
    """exit once every partition has processed its end-of-stream markers"""
    timeout: OptionalSeconds = None
    """with --until-end: give up after this wall-clock time"""
    method: Annotated[dict[str, Any], Method]
    labels: Annotated[LabelConfig, Windows]
    batches: Annotated[BatchConfig, Batches]
    joiner: Annotated[JoinerConfig, Joiner]
    supervision: Annotated[SupervisionConfig, Supervision]
    metrics_port: MetricsPort = None


def method_of(command: JoinCommand) -> str:
    chosen: dict[str, Any] = command.method
    return str(chosen["method"])


def joiner_config(command: JoinCommand, bootstrap: str) -> JoinerConfig:
    """The joiner's config from the command line; invalid values raise ConfigError."""
    if command.timeout is not None and command.timeout < 1:
        raise ConfigError(f"--timeout must be at least 1 second, got {command.timeout}")
    labels = delayed.get(method_of(command)).labels(command.labels)
    return replace(command.joiner, bootstrap=bootstrap, labels=labels, batches=command.batches)


def check_log_dir(path: Path) -> None:
    """Make sure the workers can write their logs into `path` (created if missing); else
    ConfigError naming --log-dir, before anything starts."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--log-dir {path}: is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--log-dir {path}: cannot be written: {exc.strerror or exc}; "
            "choose a folder the joiner may write its worker logs into"
        ) from None


def format_reasons(counts: Mapping[str, int]) -> str:
    """Dead letters by reason, on one line.

    >>> format_reasons({"too-large": 1, "malformed": 2}), format_reasons({})
    ('malformed:2 too-large:1', 'none')
    """
    return " ".join(f"{reason}:{n:,}" for reason, n in sorted(counts.items())) or "none"


def run(args: JoinCommand) -> int:
    # SIGTERM as Ctrl-C: either way the workers are stopped on the way out, --until-end included.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    supervision: SupervisionConfig = args.supervision
    # Every option is checked before anything is created or started (the broker included).
    config = joiner_config(args, args.bootstrap or "")
    check_log_dir(args.log_dir)
    with bootstrap_or_embedded(args.bootstrap) as bootstrap, contextlib.ExitStack() as stack:
        config = dataclasses.replace(config, bootstrap=bootstrap)
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
            f"joiner: {args.workers} worker(s) on {bootstrap}, method {method_of(args)}, "
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
                monitor, until_end=args.until_end, timeout_s=args.timeout or math.inf, tick=tick
            )
        monitor.drain()
        telemetry.update(monitor, workers, watch, force=True)
        ended = (
            f"end of stream on all {config.partitions} partitions"
            if monitor.done
            else f"stopped ({len(monitor.ended)} of {config.partitions} partitions ended)"
        )
        print(
            f"joiner: {ended} after {time.monotonic() - started:.1f}s; {monitor.rows:,} rows "
            f"in mini-batches; dead letters {format_reasons(monitor.deadletters)}; "
            f"restarts {workers.restarts}",
            flush=True,
        )
    return 0


ENTRIES = {
    ("join",): Entry(
        "label impressions/clicks/conversions in event time; emit mini-batches", JoinCommand, run
    )
}
