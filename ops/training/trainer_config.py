"""How the trainer daemon runs: its config, checked before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ops.errors import ConfigError
from ops.store.names import check_name


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """How the daemon runs (the learner's own settings are in LearnerConfig).

    Attributes:
        run: run name in the registry (several runs may learn side by side from one stream).
        snapshot_every_examples: publish after this many examples since the last snapshot (None:
            never).
        snapshot_every_event_s: publish after this many seconds of event-time watermark (None:
            never).
        until_end: stop once every partition has delivered the stream's end marker.
        idle_timeout_s: stop after this many wall seconds without a message (None: wait forever).
        max_batches: stop after this many mini-batches in this process (None: no limit).
        progress_every_s: wall seconds between progress lines.
        poll_timeout_s: longest wait of one poll.
        partition_wait_s: train the other partitions past one that has had nothing buffered for this
            long (or once a buffer is full), which makes the run depend on timing (an outage or a
            slow fetch reorders training and changes the model); none, the default, waits for a
            silent partition as long as it is silent and shows the wait in the progress line.
            Event-time order across partitions needs every partition's next mini-batch, and the
            joiner's heartbeats keep idle partitions moving, so by default only an outage or a
            stalled joiner holds training, and the model is a function of the stream alone.
        buffer_depth: with a --partition-wait, mini-batches buffered per partition before the others
            are passed over (bounds memory). While waiting for a silent partition by default, the
            others' buffers are not bounded by it (they grow by what was fetched).
        lease_timeout_s: a run's lease (one trainer per run, in the registry) whose holder has not
            renewed it for this long may be taken over by another trainer; the holder renews it
            every third of this.
        broker_timeout_s: how long the broker may not answer before the trainer exits non-zero
            (meanwhile it reports the outage and its clients reconnect by themselves).
        validation_window: rows per domain of the rolling AUC of progressive validation.
        min_train_examples: no snapshot is published before the model has taken optimizer steps on
            this many examples (a snapshot of a model before its first steps serves its random
            initialisation, at chance, until the next one). 4096: on the demo's log the snapshot
            after that many examples ranks well above chance (docs/results.md).
        lr_warmup_s: with `--lr auto`, the event time during which a grid of learning rates is raced
            before the best is kept (`ops.training.lr_search`).
    """

    run: str
    snapshot_every_examples: int | None = 100_000
    snapshot_every_event_s: int | None = None
    until_end: bool = False
    idle_timeout_s: float | None = None
    max_batches: int | None = None
    progress_every_s: float = 5.0
    poll_timeout_s: float = 0.5
    partition_wait_s: float | None = None
    buffer_depth: int = 256
    lease_timeout_s: float = 60.0
    broker_timeout_s: float = 300.0
    validation_window: int = 10_000
    min_train_examples: int = 4096
    lr_warmup_s: int = 14 * 86_400

    def __post_init__(self) -> None:
        check_name("TrainerConfig.run", self.run)
        counts = (
            "snapshot_every_examples",
            "snapshot_every_event_s",
            "max_batches",
            "buffer_depth",
            "validation_window",
        )
        if self.min_train_examples < 0:
            raise ConfigError(
                f"TrainerConfig.min_train_examples must be >= 0, got {self.min_train_examples}"
            )
        for name in counts:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"TrainerConfig.{name} must be at least 1, got {value}")
        seconds = (
            "idle_timeout_s", "progress_every_s", "poll_timeout_s", "partition_wait_s",
            "broker_timeout_s", "lr_warmup_s", "lease_timeout_s",
        )  # fmt: skip
        for name in seconds:
            value = getattr(self, name)
            if value is not None and not 0 <= value < math.inf:  # NaN fails too
                raise ConfigError(
                    f"TrainerConfig.{name} must be a number of seconds >= 0, got {value}"
                )
        if not self.lease_timeout_s > 0:
            raise ConfigError(
                f"TrainerConfig.lease_timeout_s must be seconds > 0, got {self.lease_timeout_s}"
            )
