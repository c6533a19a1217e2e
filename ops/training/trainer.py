"""The online trainer daemon: the `minibatches` stream in, one optimizer step per mini-batch, snapshots out.

Loop: poll the source and decode each message; release the buffered mini-batches of all
partitions in event-time order (`PartitionMerge`), `OnlineLearner.step` each and remember
the next offset of its partition; publish a snapshot every N examples or every K seconds
of event time; announce each snapshot on the `snapshots` topic.

Resume. A snapshot stores the offsets the run has consumed up to, and those, not a
consumer group's committed offsets, decide where reading restarts: on start the store
is reconciled (`ops.store.snapshots`), the newest snapshot that verifies is loaded and the
source seeks every partition to its stored offset (partitions it does not name start at
the beginning). Every mini-batch is therefore in the persisted state exactly once, and
duplicates the joiner itself re-emits are dropped by the learner's deduper.

Order. A partition with nothing buffered is waited for (`partition_wait_s`, by default as
long as it is silent), so an outage delays training and never reorders it.

Stopping. SIGTERM (or SIGINT) lets the current mini-batch finish, publishes a snapshot and
exits 0. For tests and the demo, the run also stops when every partition has delivered the
stream's end (`until_end`: a mini-batch flagged `end`), after `idle_timeout_s` without a
message, or after `max_batches` steps; never by end offsets (the embedded broker's are wrong).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops.store.snapshots import PublishedSnapshot
from ops.training.learner import OnlineLearner, StepResult
from ops.training.lr_search import LearningRateSearch
from ops.training.merge import PartitionMerge
from ops.training.progressive import ProgressiveValidation
from ops.training.rows import LabeledRows
from ops.training.seams import Announcer, Decoder, Health, Snapshots
from ops.training.telemetry import TrainerMetrics
from ops.training.trainer_config import TrainerConfig
from streaming.errors import StreamingError
from streaming.events import format_event_time
from streaming.progress import ProgressLine
from streaming.source import Message, Source

log = logging.getLogger("ops.training.trainer")


@dataclass(frozen=True, kw_only=True)
class TrainerOutcome:
    """How a run of the daemon ended."""

    reason: str
    batches: int
    examples_seen: int
    duplicates_dropped: int
    last_snapshot: PublishedSnapshot | None


@dataclass(kw_only=True)
class RunState:
    """What one `Trainer.run()` keeps between turns of its loop."""

    idle_since: float  # wall time of the last message
    unready_since: float | None = None  # since when some partition has had nothing buffered
    batches: int = 0
    loss: float = math.nan


class Trainer:
    """The daemon loop for one run; `run()` returns when a stop condition is met."""

    def __init__(
        self,
        config: TrainerConfig,
        *,
        new_learner: Callable[[], OnlineLearner],
        restore: Callable[[dict[str, Any]], OnlineLearner] = OnlineLearner.from_state,
        store: Snapshots,
        source: Source,
        decode: Decoder,
        announcer: Announcer | None = None,
        metrics: TrainerMetrics | None = None,
        stop: threading.Event | None = None,
        health: Health | None = None,
        search: Callable[[], LearningRateSearch] | None = None,
    ) -> None:
        """search: a learning-rate race to run first (`--lr auto`) when the run is new."""
        self.config = config
        self.store = store
        self.source = source
        self.decode = decode
        self.announcer = announcer
        self.metrics = metrics or TrainerMetrics(config.run)
        self.stop_requested = stop or threading.Event()
        self.health = health
        self._broker_up = True
        # Kept between run() calls: what is buffered was fetched already and must not be lost.
        self._merge = PartitionMerge(config.buffer_depth)
        self.ended: set[int] = set()  # partitions whose end marker was consumed
        self.search: LearningRateSearch | None = None
        self.learner, self.offsets, self.last_snapshot = self._resume(new_learner, restore, search)
        self.lr_search: dict[str, Any] | None = self._resumed_extra.get("lr_search")
        # Scores before each step, since this process started (labels as known at training time).
        self.validation = ProgressiveValidation(window=config.validation_window)
        self._snapshot_examples = self.learner.examples_seen
        self._snapshot_watermark = self.learner.watermark
        self.source.seek(self.offsets)

    def _resume(
        self,
        new_learner: Callable[[], OnlineLearner],
        restore: Callable[[dict[str, Any]], OnlineLearner],
        search: Callable[[], LearningRateSearch] | None,
    ) -> tuple[OnlineLearner, dict[str, int], PublishedSnapshot | None]:
        reconciled = self.store.reconcile()
        if reconciled.rows_removed or reconciled.files_removed:
            log.warning(
                "reconciled run=%s rows_removed=%s files_removed=%d",
                self.config.run,
                list(reconciled.rows_removed),
                len(reconciled.files_removed),
            )
        loaded = self.store.load_latest()
        self._resumed_extra: dict[str, Any] = {}
        if loaded is None:
            log.info("starting fresh run=%s", self.config.run)
            if search is not None:  # --lr auto: a new run races its rates first
                self.search = search()
                return self.search.current, {}, None
            return new_learner(), {}, None
        published, payload = loaded
        learner = restore(payload)
        self._resumed_extra = payload["extra"]
        self.ended = set(payload["extra"].get("ended", []))
        log.info(
            "resumed run=%s version=%d examples_seen=%d watermark=%s offsets=%s",
            self.config.run,
            published.version,
            learner.examples_seen,
            learner.watermark,
            json.dumps(published.offsets, sort_keys=True),
        )
        return learner, dict(published.offsets), published

    def run(self) -> TrainerOutcome:
        """Consume and train until a stop condition; always ends with a snapshot of new work."""
        state = RunState(idle_since=time.monotonic())
        progress = ProgressLine(
            lambda line: log.info("progress run=%s %s", self.config.run, line),
            unit="examples",
            every_s=self.config.progress_every_s,
        )
        # No snapshot on an exception: a crash resumes from the last snapshot, like a SIGKILL.
        while (reason := self._stop_reason(state)) is None:
            self._check_broker()
            expected = self.source.partitions() - self.ended
            if not self._fetch(state, expected):
                reason = "idle-timeout"
                break
            self._train_released(state, expected)
            self._report(progress, state)
        self._snapshot_if_new()
        self._report(progress, state, force=True)
        log.info(
            "trainer stopped run=%s reason=%s batches=%d examples_seen=%d duplicates_dropped=%d",
            self.config.run,
            reason,
            state.batches,
            self.learner.examples_seen,
            self.learner.deduper.dropped,
        )
        return TrainerOutcome(
            reason=reason,
            batches=state.batches,
            examples_seen=self.learner.examples_seen,
            duplicates_dropped=self.learner.deduper.dropped,
            last_snapshot=self.last_snapshot,
        )

    def _stop_reason(self, state: RunState) -> str | None:
        if self.stop_requested.is_set():
            return "signal"
        if self._batch_limit_reached(state):
            return "max-batches"
        if self.config.until_end and self.ended >= self.source.partitions():
            return "end-of-stream"
        return None

    def _batch_limit_reached(self, state: RunState) -> bool:
        return self.config.max_batches is not None and state.batches >= self.config.max_batches

    def _fetch(self, state: RunState, expected: frozenset[int]) -> bool:
        """Buffer what the source has; False once idle for idle_timeout_s with nothing buffered."""
        merge = self._merge
        # Poll only when some partition has nothing buffered: when every one has, the
        # next mini-batch in event-time order is known without waiting for the broker.
        messages = [] if merge.ready(expected) else self.source.poll(self.config.poll_timeout_s)
        for message in messages:
            merge.push(message, self._decode(message))
        if messages:
            state.idle_since = time.monotonic()
            return True
        idle_timeout_s = self.config.idle_timeout_s
        return (
            bool(merge)
            or idle_timeout_s is None
            or time.monotonic() - state.idle_since < idle_timeout_s
        )

    def _train_released(self, state: RunState, expected: frozenset[int]) -> None:
        """Train the mini-batches the merge releases, in event-time order, and snapshot when due."""
        merge = self._merge
        # A partition with nothing buffered is waited for (by default, for as long as it is
        # silent): training the others past it would make the model depend on timing.
        if merge.ready(expected) or not merge:
            state.unready_since = None
        elif state.unready_since is None:
            state.unready_since = time.monotonic()
        limit = self.config.partition_wait_s
        waited_out = (
            limit is not None
            and state.unready_since is not None
            and (time.monotonic() - state.unready_since >= limit or merge.full())
        )
        while (item := merge.pop(expected, wait_for_all=not waited_out)) is not None:
            message, decoded = item
            if decoded is not None and len(decoded.impression_ids):
                state.loss = self._train(decoded, state.loss)
                state.batches += 1
            if decoded is not None and decoded.end:
                self.ended.add(message.partition)
                expected = expected - {message.partition}
            self.offsets[str(message.partition)] = message.offset + 1
            self._maybe_snapshot()
            self._check_broker()  # a full buffer takes a while to train: exit within the timeout
            if self.stop_requested.is_set() or self._batch_limit_reached(state):
                break  # the rest stays buffered for a next run(); its offsets are unrecorded

    def _report(self, progress: ProgressLine, state: RunState, *, force: bool = False) -> None:
        """The progress line, when one is due, and the throughput gauge."""
        if not progress.due(force):
            return
        last = self.last_snapshot
        # The progressive-validation figures (their AUC is a sort) when shown, not per step.
        quality = self.validation.metrics()
        self.metrics.show_validation(quality)
        overall = quality["domains"].get("overall", {})
        auc = overall.get("auc")
        rate = progress.emit(
            self.learner.examples_seen,
            trained=self.learner.examples_trained,
            loss=f"{state.loss:.4f}",
            watermark=format_event_time(self.learner.watermark),
            lag=self.source.lag(self.offsets) if self._broker_up else None,
            last_snapshot=None if last is None else f"v{last.version}",
            broker="ok" if self.health is None or self._broker_up else "unreachable",
            pv_logloss=f"{overall['log_loss']:.4f}" if overall else None,
            pv_auc=None if auc is None else f"{auc:.4f}",
            drifts=len(quality["drift_points"]),
            waiting=self._waiting(state),
        )
        self.metrics.rate.set(rate)

    def _waiting(self, state: RunState) -> str | None:
        """The silent partitions training waits for, and for how long: "p2,p3/31s"."""
        if state.unready_since is None:
            return None
        silent = self._merge.missing(self.source.partitions() - self.ended)
        waited = time.monotonic() - state.unready_since
        return f"p{',p'.join(map(str, silent))}/{waited:.0f}s" if silent else None

    def _check_broker(self) -> None:
        """Keep the broker gauge; raise once the broker has been gone too long (the watch's
        thread, which no blocked call can hold, logs the outage itself)."""
        if self.health is None:
            return
        self.health.raise_if_expired(f"run {self.config.run}")
        self._broker_up = self.health.up
        self.metrics.broker_up.set(int(self._broker_up))

    def _decode(self, message: Message) -> LabeledRows | None:
        try:
            return self.decode(message.value)
        except StreamingError as exc:
            # A message nobody can train on: skip it rather than crash-loop on it.
            log.error(
                "undecodable mini-batch skipped run=%s partition=%d offset=%d: %s",
                self.config.run,
                message.partition,
                message.offset,
                exc,
            )
            return None

    def _train(self, rows: LabeledRows, loss: float) -> float:
        result = (self.search or self.learner).step(rows)
        self._validate(rows, result)
        if self.search is not None and self.search.done():
            self.learner, self.lr_search = self.search.choose()
            self.search = None
            log.info(
                "learning rate chosen run=%s lr=%s log_loss=%s rows=%d",
                self.config.run,
                self.lr_search["chosen"],
                json.dumps(self.lr_search["log_loss"], sort_keys=True),
                self.lr_search["rows_scored"],
            )
        self.metrics.batches.inc()
        self.metrics.examples.inc(result.trained)
        self.metrics.duplicates.inc(result.dropped)
        if self.learner.watermark is not None:
            self.metrics.watermark.set(self.learner.watermark)
        if math.isnan(result.loss):
            return loss
        self.metrics.loss.set(result.loss)
        return result.loss

    def _validate(self, rows: LabeledRows, result: StepResult) -> None:
        """Progressive validation of a step's rows: the clicked ones, scored before the step."""
        scored = self.learner.last_scored
        if not result.trained or scored is None:
            return
        clicked = scored["click"] > 0
        featurize = self.learner.featurize
        types, scenarios = featurize.types.values, featurize.scenarios.values
        self.validation.update(
            scored["conversion"][clicked],
            scored["p"][clicked],
            [types[i] for i in scored["conv_type"][clicked]],
            [scenarios[i] for i in scored["scenario"][clicked]],
            self.learner.watermark,
        )
        self.learner.last_scored = None

    def _maybe_snapshot(self) -> None:
        every_n = self.config.snapshot_every_examples
        every_s = self.config.snapshot_every_event_s
        learner = self.learner
        due_examples = (
            every_n is not None and learner.examples_seen - self._snapshot_examples >= every_n
        )
        due_time = (
            every_s is not None
            and learner.watermark is not None
            and (
                self._snapshot_watermark is None
                or learner.watermark - self._snapshot_watermark >= every_s
            )
            and learner.examples_seen > self._snapshot_examples
        )
        if (due_examples or due_time) and self._trained_enough():
            self.snapshot()

    def _trained_enough(self) -> bool:
        """Whether the model has taken steps on min_train_examples: before that a snapshot
        would serve (nearly) its random initialisation, at chance, for a whole interval."""
        return (
            self.search is None and self.learner.examples_trained >= self.config.min_train_examples
        )

    def _snapshot_if_new(self) -> None:
        stored = {} if self.last_snapshot is None else self.last_snapshot.offsets
        new = self.learner.examples_seen != self._snapshot_examples or self.offsets != stored
        if new and self._trained_enough():
            self.snapshot()
        elif new:
            # Nothing is lost: without a snapshot the run restarts from its last one (or
            # the stream's beginning) and trains the same rows again, in the same order.
            log.info(
                "no snapshot at stop run=%s: %d examples trained, fewer than %d",
                self.config.run,
                self.learner.examples_trained,
                self.config.min_train_examples,
            )

    def snapshot(self) -> PublishedSnapshot:
        """Publish the learner's state with the offsets consumed so far, and announce it."""
        search = {} if self.lr_search is None else {"lr_search": self.lr_search}
        published = self.store.publish(
            self.learner.state(offsets=dict(self.offsets), ended=sorted(self.ended), **search),
            examples_seen=self.learner.examples_seen,
            watermark=self.learner.watermark,
            offsets=dict(self.offsets),
            metrics={**self.validation.metrics(), **search},
            examples_trained=self.learner.examples_trained,
        )
        self.last_snapshot = published
        self._snapshot_examples = self.learner.examples_seen
        self._snapshot_watermark = self.learner.watermark
        self.metrics.snapshots.inc()
        if self.announcer is not None:
            self.announcer.announce(published)
        return published
