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
from dataclasses import dataclass

import torch

from model import zoo as models
from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.cli.bootstrap import add_bootstrap_argument
from ops.cli.options import ConfigOptions, add_options, build, class_default
from ops.errors import ConfigError
from ops.store.database import DEFAULT_URL, open_registry
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.kafka_io import KafkaAnnouncer, KafkaSource
from ops.training.learner import LearnerConfig, OnlineLearner
from ops.training.telemetry import TrainerMetrics
from ops.training.trainer import Trainer, TrainerConfig, TrainerOutcome, stop_on_signals
from simulator.criteo_search import CriteoSearchConfig
from streaming.minibatch import decode_minibatch
from streaming.topics import TopicNames, create_topics

# Capacities follow the readers' top-K: K values of their own plus the one "other" domain.
_CAPACITIES = {
    "n_types": class_default(CriteoSearchConfig, "top_types") + 1,
    "n_scenarios": class_default(CriteoSearchConfig, "top_scenarios") + 1,
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="the online trainer: learn from the minibatches topic, publish snapshots"
    )
    add_bootstrap_argument(parser)
    parser.add_argument("--db", default=DEFAULT_URL, help="registry database URL")
    parser.add_argument("--topic", default=TopicNames().minibatches, help="mini-batch topic")
    parser.add_argument(
        "--snapshots-topic", default=TopicNames().snapshots, help="snapshot announcements topic"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on 127.0.0.1"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (none: torch's)")
    daemon = parser.add_argument_group("the daemon")
    trainer = add_options(
        daemon,
        TrainerConfig,
        skip=("poll_timeout_s",),
        flags=_TRAINER_FLAGS,
        defaults={"snapshot_every_examples": None},
    )
    store = add_options(daemon, SnapshotStoreConfig, flags={"directory": "snapshot-dir"})
    learn = parser.add_argument_group("learning")
    learner = add_options(learn, LearnerConfig, skip=("model_config", "featurizer"))
    shape = add_options(learn, ModelConfig, skip=("n_fields",), defaults=_CAPACITIES)
    features = add_options(learn, FeaturizerConfig, only=("fields",))
    parser.set_defaults(func=run, options=TrainOptions(trainer, store, learner, shape, features))


_TRAINER_FLAGS = {
    "snapshot_every_examples": "snapshot-every",
    "snapshot_every_event_s": "snapshot-every-event-time",
}


@dataclass(frozen=True)
class TrainOptions:
    """The options `mmn train` derives from each config it builds."""

    trainer: ConfigOptions
    store: ConfigOptions
    learner: ConfigOptions
    shape: ConfigOptions
    features: ConfigOptions


def learner_config(args: argparse.Namespace) -> LearnerConfig:
    """The learner's config from the command line."""
    options: TrainOptions = args.options
    featurizer = build(args, options.features)
    numeric = tuple(
        f for f in class_default(FeaturizerConfig, "numeric_fields") if f in featurizer.fields
    )
    featurizer = FeaturizerConfig(
        fields=featurizer.fields, numeric_fields=numeric, buckets=args.buckets
    )
    shape = build(args, options.shape, n_fields=len(featurizer.fields))
    models.get(args.model)  # an unknown model name fails before anything starts
    return build(args, options.learner, model_config=shape, featurizer=featurizer)


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
    """The daemon's config; with neither cadence given, the config's default cadence."""
    options: TrainOptions = args.options
    cadence = {}
    if args.snapshot_every is None and args.snapshot_every_event_time is None:
        cadence["snapshot_every_examples"] = class_default(TrainerConfig, "snapshot_every_examples")
    return build(args, options.trainer, **cadence)


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
            build(args, args.options.store),
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
