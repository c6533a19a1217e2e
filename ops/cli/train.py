"""`mmn train`: the online trainer daemon for one run (see ops.training.trainer).

    mmn train --run mmn-a --model mmn --bootstrap 127.0.0.1:9092 --snapshot-every 100000

Several runs (MMN, ESMM, ablations) learn side by side from the same stream under
different run names. Options are combined here into the components' configs; nothing
deeper reads the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.cli.train_group import (
    add_group_options,
    group_of_environment,
    joined_group,
    supervise,
)
from ops.errors import ConfigError
from ops.options.bootstrap import add_bootstrap_argument
from ops.options.configs import (
    ConfigOptions,
    add_options,
    add_threads_option,
    build,
    class_default,
    port_number,
)
from ops.options.device import add_device_option, resolve_device
from ops.store.defaults import DEFAULT_URL
from ops.store.snapshot_config import SnapshotStoreConfig
from ops.training.learner_config import LearnerConfig
from ops.training.trainer_config import TrainerConfig
from simulator.criteo_search import CriteoSearchConfig
from streaming.topics import TopicNames

# The rest is imported where it runs: `mmn train --help` needs neither torch nor SQLAlchemy.
if TYPE_CHECKING:
    import torch
    from sqlalchemy.orm import Session, sessionmaker

    from ops.store.leases import Lease
    from ops.store.snapshots import PublishedSnapshot, Reconciliation, SnapshotStore
    from ops.training.data_parallel import GroupLink
    from ops.training.learner import OnlineLearner
    from ops.training.lr_search import LearningRateSearch
    from ops.training.trainer import Trainer, TrainerOutcome
    from streaming.minibatch import MiniBatch

# Capacities follow the readers' top-K: K values of their own plus the one "other" domain.
_CAPACITIES = CriteoSearchConfig().capacities


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
        "--metrics-port",
        type=port_number,
        default=None,
        help="serve Prometheus metrics on 127.0.0.1",
    )
    add_threads_option(parser)
    add_device_option(parser)
    add_group_options(parser)
    parser.add_argument(
        "--reconfigure",
        action="store_true",
        help=f"resume the run with new values of {', '.join(RECONFIGURABLE)} "
        "(other differences from the run's options are refused)",
    )
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
    shape = build(args, options.shape, n_fields=len(featurizer.fields))  # checks --buckets
    featurizer = FeaturizerConfig(
        fields=featurizer.fields, numeric_fields=numeric, buckets=args.buckets
    )
    from model import zoo as models

    models.get(args.model)  # an unknown model name fails before anything starts
    return build(args, options.learner, model_config=shape, featurizer=featurizer)


def trainer_config(args: argparse.Namespace) -> TrainerConfig:
    """The daemon's config; with neither cadence given, the config's default cadence."""
    options: TrainOptions = args.options
    cadence = {}
    if args.snapshot_every is None and args.snapshot_every_event_time is None:
        cadence["snapshot_every_examples"] = class_default(TrainerConfig, "snapshot_every_examples")
    return build(args, options.trainer, **cadence)


# Learner options a resumed run may change: they take effect on the restored learner.
RECONFIGURABLE = ("lr",)


def restore_with(
    config: LearnerConfig, device: torch.device | str = "cpu"
) -> Callable[[dict[str, Any]], OnlineLearner]:
    """Restores a snapshot's learner on device, then applies config's RECONFIGURABLE values to it."""

    from ops.training.learner import OnlineLearner

    def restore(payload: dict[str, Any]) -> OnlineLearner:
        learner = OnlineLearner.from_state(payload, device)
        # With --lr auto the rate the run's race chose stays.
        rate = learner.config.lr if config.lr == "auto" else config.lr
        learner.config = dataclasses.replace(config, lr=rate)
        learner.set_lr(rate)  # type: ignore[arg-type]  # resolved by LearnerConfig
        return learner

    return restore


def checked_decoder(fields: tuple[str, ...]) -> Callable[[bytes], MiniBatch]:
    """decode_minibatch that checks, once, that the first mini-batch with rows has `fields`.

    A mistyped --fields would otherwise train on an empty string per row.
    """
    from streaming.minibatch import decode_minibatch

    checked = False

    def decode(value: bytes) -> MiniBatch:
        nonlocal checked
        batch = decode_minibatch(value)
        if not checked and len(batch):
            checked = True
            missing = sorted(set(fields) - set(batch.features))
            if missing:
                raise ConfigError(
                    f"--fields: {', '.join(missing)} not in the mini-batches, which carry "
                    f"{', '.join(sorted(batch.features)) or 'no fields'}"
                )
        return batch

    return decode


def checked_options(
    args: argparse.Namespace,
) -> tuple[TrainerConfig, SnapshotStoreConfig, LearnerConfig, torch.device]:
    """Every option checked, before anything starts (ranks too: before they are started)."""
    from ops.training.data_parallel import check_parallel

    if args.bootstrap is None:
        raise ConfigError(
            "mmn train needs --bootstrap HOST:PORT: an embedded broker started for the trainer "
            "alone would hold no mini-batches (run `mmn broker` or `mmn demo`)"
        )
    daemon = trainer_config(args)
    store_config = build(args, args.options.store)
    config = learner_config(args)
    if args.nproc > 1 or group_of_environment() is not None:
        check_parallel(config)
    return daemon, store_config, config, resolve_device(args.device)


def train(args: argparse.Namespace) -> TrainerOutcome:
    """Run the trainer (or one rank of a data-parallel run) against a broker until it stops;
    resources are released on the way out."""
    import torch

    from ops.cli.outputs import check_output_folder, open_daemon_registry
    from ops.streams.kafka_source import KafkaSource
    from ops.streams.signals import stop_on_signals
    from ops.training.kafka_io import KafkaAnnouncer
    from ops.training.telemetry import TrainerMetrics
    from streaming.health import BrokerWatch
    from streaming.topics import create_topics

    stop = stop_on_signals()
    bootstrap = args.bootstrap
    daemon, store_config, config, device = checked_options(args)
    torch.set_num_threads(args.threads)
    group = group_of_environment()  # (rank, world) of a data-parallel run, or None
    lead = group is None or group[0] == 0  # the rank that holds the lease and writes
    if lead:
        check_output_folder(store_config.directory, "--snapshot-dir")  # before the registry line
    Session = open_daemon_registry(args.db, "train") if lead else None
    with contextlib.ExitStack() as stack:
        link = joined_group(stack, device) if group is not None else None
        store = (
            leased_store(stack, Session, args, store_config, config, daemon) if Session else None
        )
        if lead:  # the registry first, then the broker
            create_topics(bootstrap, {args.snapshots_topic: 1})
        source = KafkaSource(bootstrap, args.topic, share=group)
        stack.callback(source.close)
        metrics = TrainerMetrics(args.run, args.metrics_port if lead else None)
        stack.callback(metrics.close)
        # Told from the watch's own thread: a loop blocked on the broker still says so in time.
        watch = BrokerWatch(
            bootstrap,
            timeout_s=daemon.broker_timeout_s,
            on_change=lambda line: logging.getLogger("ops.training.trainer").warning(
                "%s run=%s", line, args.run
            ),
        ).start()
        stack.callback(watch.close)
        announcer = None
        if lead:  # a snapshot due in an outage waits for the broker, up to --broker-timeout
            announcer = KafkaAnnouncer(bootstrap, args.snapshots_topic, health=watch)
            stack.callback(announcer.close)
        parts = {"source": source, "announcer": announcer, "metrics": metrics, "health": watch}
        return _trainer(daemon, config, device, store, link, stop, parts).run()


def _trainer(
    daemon: TrainerConfig,
    config: LearnerConfig,
    device: torch.device,
    store: LeasedStore | None,
    link: GroupLink | None,
    stop: threading.Event,
    parts: dict[str, Any],
) -> Trainer:
    """The daemon alone, or one rank of a data-parallel run (link: its group)."""
    from ops.training.learner import OnlineLearner
    from ops.training.parallel_trainer import GroupStore, ParallelTrainer
    from ops.training.trainer import Trainer

    common = {
        "new_learner": lambda: OnlineLearner(config, device),
        "restore": restore_with(config, device),
        "decode": checked_decoder(config.featurizer.fields),
        "stop": stop,
        **parts,
    }
    if link is None:
        assert store is not None
        return Trainer(daemon, store=store, search=lr_search(config, daemon, device), **common)
    return ParallelTrainer(daemon, store=GroupStore(link, store), link=link, **common)


def leased_store(
    stack: contextlib.ExitStack,
    Session: sessionmaker[Session],
    args: argparse.Namespace,
    store_config: SnapshotStoreConfig,
    config: LearnerConfig,
    daemon: TrainerConfig,
) -> LeasedStore:
    """The run's lease, then its snapshot store, its folder locked (both released by stack)."""
    from ops.store.leases import take_lease
    from ops.store.snapshots import SnapshotStore

    # The run's lease before its folder: a second trainer touches none of its files.
    lease = take_lease(Session, args.run, timeout_s=daemon.lease_timeout_s)
    stack.callback(lease.release)
    lease.start_renewing()
    snapshots = SnapshotStore(
        store_config,
        Session,
        run=args.run,
        model=args.model,
        run_config=config.state(),
        reconfigurable=(lambda key: key in RECONFIGURABLE) if args.reconfigure else None,
    )
    stack.callback(snapshots.close)
    return LeasedStore(snapshots, lease)


class LeasedStore:
    """The run's snapshot store, written only while this trainer still holds the run's lease
    (one taken over after a stall must not publish: the new holder writes the run now)."""

    def __init__(self, store: SnapshotStore, lease: Lease) -> None:
        self.store, self.lease = store, lease

    def reconcile(self) -> Reconciliation:
        self.lease.check()
        return self.store.reconcile()

    def load_latest(self) -> tuple[PublishedSnapshot, dict[str, Any]] | None:
        return self.store.load_latest()

    def publish(self, payload: dict[str, Any], **kwargs: Any) -> PublishedSnapshot:
        self.lease.check()
        return self.store.publish(payload, **kwargs)


def lr_search(
    config: LearnerConfig, daemon: TrainerConfig, device: torch.device | str = "cpu"
) -> Callable[[], LearningRateSearch] | None:
    """With --lr auto: the race of rates around the model's own, on device (None otherwise)."""
    from model import zoo as models
    from ops.training.learner import OnlineLearner
    from ops.training.lr_search import LearningRateSearch, grid

    if config.lr != "auto":
        return None
    own = models.get(config.model).lr
    return lambda: LearningRateSearch(
        config,
        rates=grid(own),
        follow=own,
        warmup_s=daemon.lr_warmup_s,
        make=lambda c: OnlineLearner(c, device),
    )


def run(args: argparse.Namespace) -> int:
    from streaming.health import quiet_repeats

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("kafka", "alembic"):  # connection and migration chatter at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    quiet_repeats(("kafka",))  # a broker outage: one line per kind of error, not thousands
    if args.nproc > 1 and group_of_environment() is None:
        checked_options(args)  # a bad option is told once, not once per rank
        return supervise(sys.argv[1:], args.nproc, args.max_restarts)
    outcome = train(args)
    group = group_of_environment()
    if group is not None and group[0] != 0:
        return 0  # rank 0 tells how the run ended
    last = outcome.last_snapshot
    print(
        f"run {args.run}: stopped ({outcome.reason}) after {outcome.batches} mini-batches, "
        f"{outcome.examples_seen} examples seen, {outcome.duplicates_dropped} duplicates dropped; "
        f"latest snapshot {'none' if last is None else f'v{last.version} {last.path}'}"
    )
    return 0
