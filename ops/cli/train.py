"""`mmn train`: the online trainer daemon for one run (see ops.training.trainer).

    mmn train --run mmn-a --model mmn --bootstrap 127.0.0.1:9092 --snapshot-every 100000

Several runs (MMN, ESMM, ablations) learn side by side from the same stream under
different run names. Options are combined here into the components' configs; nothing
deeper reads the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
from pathlib import Path

import torch

from model import zoo as models
from model.config import ModelConfig
from model.features import CRITEO_FEATURE_FIELDS, FeaturizerConfig
from ops.cli.bootstrap import add_bootstrap_argument
from ops.errors import ConfigError
from ops.store.database import DEFAULT_URL, open_registry
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.delayed import STREAM_METHODS
from ops.training.kafka_io import KafkaAnnouncer, KafkaSource
from ops.training.learner import OPTIMIZERS, LearnerConfig, OnlineLearner
from ops.training.telemetry import TrainerMetrics
from ops.training.trainer import Trainer, TrainerConfig, TrainerOutcome, stop_on_signals
from streaming.minibatch import decode_minibatch
from streaming.topics import TopicNames, create_topics

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """Seconds of a duration like 90, 90s, 15m, 1h or 2d.

    >>> [duration_s(t) for t in ("90", "15m", "1h", "2d")]
    [90, 900, 3600, 172800]
    """
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not comma-separated widths") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="the online trainer: learn from the minibatches topic, publish snapshots"
    )
    parser.add_argument("--run", required=True, help="run name in the registry")
    parser.add_argument("--model", default="mmn", help="registered model (default mmn)")
    add_bootstrap_argument(parser)
    parser.add_argument("--db", default=DEFAULT_URL, help=f"registry URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--snapshot-dir", type=Path, default=Path("runs/snapshots"), help="snapshot root folder"
    )
    every = parser.add_argument_group("snapshot cadence (either or both)")
    every.add_argument(
        "--snapshot-every", type=int, default=None, metavar="N", help="examples between snapshots"
    )
    every.add_argument(
        "--snapshot-every-event-time",
        type=duration_s,
        default=None,
        metavar="DURATION",
        help="event time between snapshots, e.g. 1h",
    )
    learn = parser.add_argument_group("learning")
    learn.add_argument("--optimizer", choices=OPTIMIZERS, default="adagrad")
    learn.add_argument("--lr", type=float, default=0.01, help="(the offline experiment's best)")
    learn.add_argument(
        "--method",
        choices=STREAM_METHODS,
        default=LearnerConfig.method,
        help="delayed-feedback method; `mmn join --method` must name the same",
    )
    learn.add_argument(
        "--dedupe-horizon", type=duration_s, default=86400, help="event time a key is remembered"
    )
    learn.add_argument("--n-types", type=int, default=22, help="conversion-type capacity")
    learn.add_argument("--n-scenarios", type=int, default=18, help="display-scenario capacity")
    learn.add_argument("--buckets", type=int, default=1 << 17, help="hash buckets per field")
    learn.add_argument("--embed-dim", type=int, default=10)
    learn.add_argument("--hidden", type=_widths, default=(512, 256, 128, 128), metavar="W,W,...")
    learn.add_argument(
        "--fields",
        default=",".join(CRITEO_FEATURE_FIELDS),
        help="feature fields, comma-separated (default: the 18 non-leak Criteo columns)",
    )
    learn.add_argument("--seed", type=int, default=0)
    learn.add_argument("--threads", type=int, default=None, help="torch threads")
    stop = parser.add_argument_group("stopping (default: run until SIGTERM)")
    stop.add_argument(
        "--until-end", action="store_true", help="stop once every partition's stream has ended"
    )
    stop.add_argument("--idle-timeout", type=float, default=None, metavar="SECONDS")
    stop.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--topic", default=TopicNames().minibatches, help="mini-batch topic")
    parser.add_argument("--snapshots-topic", default=TopicNames().snapshots)
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on 127.0.0.1"
    )
    parser.add_argument("--progress-every", type=float, default=5.0, metavar="SECONDS")
    parser.set_defaults(func=run)


def learner_config(args: argparse.Namespace) -> LearnerConfig:
    """The learner's config from the command line."""
    fields = tuple(f for f in args.fields.split(",") if f)
    numeric = tuple(f for f in FeaturizerConfig().numeric_fields if f in fields)
    models.get(args.model)  # an unknown model name fails before anything starts
    return LearnerConfig(
        model=args.model,
        model_config=ModelConfig(
            n_fields=len(fields),
            buckets=args.buckets,
            n_types=args.n_types,
            n_scenarios=args.n_scenarios,
            embed_dim=args.embed_dim,
            hidden=args.hidden,
        ),
        featurizer=FeaturizerConfig(fields=fields, numeric_fields=numeric, buckets=args.buckets),
        optimizer=args.optimizer,
        lr=args.lr,
        method=args.method,
        dedupe_horizon_s=args.dedupe_horizon,
        seed=args.seed,
    )


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
    every_n = args.snapshot_every
    if every_n is None and args.snapshot_every_event_time is None:
        every_n = TrainerConfig(run=args.run).snapshot_every_examples
    return TrainerConfig(
        run=args.run,
        snapshot_every_examples=every_n,
        snapshot_every_event_s=args.snapshot_every_event_time,
        until_end=args.until_end,
        idle_timeout_s=args.idle_timeout,
        max_batches=args.max_batches,
        progress_every_s=args.progress_every,
    )


def train(args: argparse.Namespace) -> TrainerOutcome:
    """Run the trainer against a broker until it stops; resources are released on the way out."""
    if args.bootstrap is None:
        raise ConfigError(
            "mmn train needs --bootstrap HOST:PORT: an embedded broker started for the trainer "
            "alone would hold no mini-batches (run `mmn broker` or `mmn demo`)"
        )
    stop = stop_on_signals()
    bootstrap = args.bootstrap
    config = learner_config(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    Session = open_registry(args.db)
    create_topics(bootstrap, {args.snapshots_topic: 1})
    with contextlib.ExitStack() as stack:
        store = SnapshotStore(
            SnapshotStoreConfig(directory=args.snapshot_dir),
            Session,
            run=args.run,
            model=args.model,
            run_config=config.state(),
        )
        stack.callback(store.close)
        source = KafkaSource(bootstrap, args.topic)
        stack.callback(source.close)
        announcer = KafkaAnnouncer(bootstrap, args.snapshots_topic)
        stack.callback(announcer.close)
        metrics = TrainerMetrics(args.run, args.metrics_port)
        stack.callback(metrics.close)
        trainer = Trainer(
            trainer_config(args),
            new_learner=lambda: OnlineLearner(config),
            store=store,
            source=source,
            decode=decode_minibatch,
            announcer=announcer,
            metrics=metrics,
            stop=stop,
        )
        return trainer.run()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("kafka", "alembic"):  # connection and migration chatter at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    outcome = train(args)
    last = outcome.last_snapshot
    print(
        f"run {args.run}: stopped ({outcome.reason}) after {outcome.batches} mini-batches, "
        f"{outcome.examples_seen} examples seen, {outcome.duplicates_dropped} duplicates dropped; "
        f"latest snapshot {'none' if last is None else f'v{last.version} {last.path}'}"
    )
    return 0
