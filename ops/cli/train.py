"""`mmn train`: the online trainer daemon for one run (see ops.training.trainer).

    mmn train --run mmn-a --model mmn --bootstrap 127.0.0.1:9092 --snapshot-every 100000

Several runs (MMN, ESMM, ablations) learn side by side from the same stream under
different run names. Its options, and the configs they make, are in ops.cli.train_options.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ops.cli.train_group import group_of_environment, joined_group, supervise
from ops.cli.train_options import (
    RECONFIGURABLE,
    TrainCommand,
    learner_config,
    trainer_config,
)
from ops.errors import ConfigError
from ops.options.device import resolve_device
from ops.options.typed import Entry
from ops.store.snapshot_config import SnapshotStoreConfig
from ops.training.learner_config import LearnerConfig
from ops.training.trainer_config import TrainerConfig

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
    args: TrainCommand,
) -> tuple[TrainerConfig, SnapshotStoreConfig, LearnerConfig, torch.device]:
    """Every option checked, before anything starts (ranks too: before they are started)."""
    from ops.training.data_parallel import check_parallel

    if args.bootstrap is None:
        raise ConfigError(
            "mmn train needs --bootstrap HOST:PORT: an embedded broker started for the trainer "
            "alone would hold no mini-batches (run `mmn broker` or `mmn demo`)"
        )
    daemon = trainer_config(args)
    store_config: SnapshotStoreConfig = args.store
    config = learner_config(args)
    if args.nproc > 1 or group_of_environment() is not None:
        check_parallel(config)
    return daemon, store_config, config, resolve_device(args.device)


def train(args: TrainCommand) -> TrainerOutcome:
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
    daemon, store_config, config, device = checked_options(args)
    bootstrap = args.bootstrap or ""  # checked_options refused none
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
    args: TrainCommand,
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


def run(args: TrainCommand) -> int:
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


ENTRIES = {
    ("train",): Entry(
        "the online trainer: learn from the minibatches topic, publish snapshots",
        TrainCommand,
        run,
    )
}
