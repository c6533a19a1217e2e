"""`mmn evaluate`: the streaming A/B evaluator daemon (see ops.evaluation.evaluator).

    mmn evaluate --experiment mmn-vs-esmm --arm control=esmm-a --arm treatment=mmn-a \\
        --shadow --window 1d --bootstrap 127.0.0.1:9092 --until-end \\
        --export-predictions out/predictions.csv

Options come from EvaluatorConfig (defaults and rules live there); `mmn report show NAME`
reads the results while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import tyro

from ops.cli.outputs import RegistryUrl
from ops.errors import ConfigError
from ops.evaluation.experiment import EvaluatorConfig
from ops.options.daemon import TORCH_THREADS, MetricsPort, Threads
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry, complete, offered
from ops.options.values import OutputFile, option_type
from ops.store.defaults import DEFAULT_URL
from streaming.topics import TopicNames

if TYPE_CHECKING:  # imported where they run: `mmn evaluate --help` needs no torch
    from sqlalchemy.orm import Session, sessionmaker


def _arm(text: str) -> tuple[str, str]:
    name, sep, run = text.partition("=")
    if not sep or not name or not run:
        raise ValueError(f"--arm takes NAME=RUN, got {text!r}")
    return name, run


def _split(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(w) for w in text.split("/"))
    except ValueError:
        raise ValueError(f"--split takes weights like 50/50, got {text!r}") from None


def _show_split(weights: tuple[float, ...]) -> str:
    return "/".join(f"{w:g}" for w in weights) or "equal"


Arm = Annotated[tuple[str, str], option_type("NAME=RUN", _arm, "=".join)]
Settings = offered(EvaluatorConfig, skip=("arms", "split", "poll_timeout_s"))


@dataclass(frozen=True, kw_only=True)
class EvaluateCommand:
    """Score arms with their serving snapshots against final labels (A/B)."""

    arm: Annotated[tuple[Arm, ...], tyro.conf.UseAppendAction]
    """an arm and the training run it serves (repeat; one is the control) (required)"""
    split: Annotated[tuple[float, ...], option_type("W/W/...", _split, _show_split)] = ()
    """traffic weights in --arm order, e.g. 50/50"""
    bootstrap: Annotated[str | None, tyro.conf.arg(metavar="HOST:PORT")] = None
    """Kafka bootstrap (required)"""
    topic: str = TopicNames().minibatches
    """mini-batch topic"""
    db: RegistryUrl = DEFAULT_URL
    metrics_port: MetricsPort = None
    export_predictions: OutputFile = None
    """write every scored example as CSV when the evaluator stops"""
    threads: Threads = TORCH_THREADS
    device: Device = DEFAULT_DEVICE
    settings: Annotated[dict[str, Any], Settings]

    def config(self) -> EvaluatorConfig:
        settings: dict[str, Any] = self.settings
        return complete(Settings, settings, arms=self.arm, split=self.split)


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


def run(args: EvaluateCommand) -> int:
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
    config = args.config()
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


ENTRIES = {
    ("evaluate",): Entry(
        "score arms with their serving snapshots against final labels (A/B)",
        EvaluateCommand,
        run,
    )
}
