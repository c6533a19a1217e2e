"""The trainer daemon as one rank of a data-parallel run (`mmn train --nproc N`, or torchrun).

Each rank reads its own partitions (`KafkaSource(share=(rank, world))`) and the ranks step
in lockstep (`ops.training.data_parallel`): every global step each rank waits until its
next mini-batch in event-time order is known (its partitions' heads, as the single-process
trainer waits for a silent partition), or brings nothing once its partitions have all
ended. Stop conditions (a signal, max-batches, idle timeout, every partition's end) are
agreed by all ranks before a step, so they stop together.

Snapshots. Rank 0 alone holds the run's lease, writes files and the registry and
announces; every rank takes part in a publish (`GroupStore`): the snapshot stores every
rank's offsets, end markers, dedupe keys and gathered rows, so a resume is exact. On start
rank 0 reconciles and loads the latest snapshot and hands it to the others (a broadcast:
ranks on other hosts need no shared disk). If a rank dies the others' collectives fail,
every rank exits non-zero, and the group is restarted from the last snapshot (by
`mmn train --nproc`'s supervisor, or torchrun's `--max-restarts`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from ops.store.snapshots import PublishedSnapshot, Reconciliation
from ops.training.data_parallel import GroupLink, ParallelLearner
from ops.training.rows import LabeledRows
from ops.training.seams import Snapshots
from ops.training.trainer import RunState, Trainer, TrainerOutcome
from streaming.progress import ProgressLine

log = logging.getLogger("ops.training.trainer")


class GroupStore:
    """The run's snapshot store as the ranks see it: rank 0's store, used collectively.

    Every method is called by every rank at the same point (the trainer's decisions to
    snapshot are made on figures every rank shares).
    """

    def __init__(self, link: GroupLink, store: Snapshots | None) -> None:
        """store: rank 0's store (None on the other ranks)."""
        self.link, self.store = link, store

    def reconcile(self) -> Reconciliation:
        found = self.store.reconcile() if self.store is not None else Reconciliation()
        self.link.gather(None)  # the others wait until the files and the registry agree
        return found

    def load_latest(self) -> tuple[PublishedSnapshot, dict[str, Any]] | None:
        loaded = self.store.load_latest() if self.store is not None else None
        return self.link.broadcast(loaded)

    def publish(self, payload: dict[str, Any], **facts: Any) -> PublishedSnapshot:
        """Publish the union's state: every rank's offsets, end markers, dedupe keys and
        gathered rows merged into rank 0's payload."""
        mine = {
            "offsets": facts["offsets"],
            "ended": payload["extra"].get("ended", []),
            "dedupe": payload["checkpoint"]["dedupe"],
            "pending": payload["checkpoint"]["pending"],
        }
        every = self.link.gather(mine)
        published = None
        if self.store is not None:
            offsets = {p: o for part in every for p, o in part["offsets"].items()}
            payload["extra"]["offsets"] = offsets
            payload["extra"]["ended"] = sorted({p for part in every for p in part["ended"]})
            payload["checkpoint"]["dedupe"] = merge_dedupe([part["dedupe"] for part in every])
            payload["checkpoint"]["pending"] = merge_pending([part["pending"] for part in every])
            published = self.store.publish(payload, **{**facts, "offsets": offsets})
        return self.link.broadcast(published)


def merge_dedupe(states: list[dict]) -> dict:
    """One Deduper state holding the keys of every rank's (`ops.training.dedupe`)."""
    buckets: dict[str, list[torch.Tensor]] = {}
    for state in states:
        for bucket, keys in state["buckets"].items():
            buckets.setdefault(bucket, []).append(keys)
    return {
        "horizon_s": states[0]["horizon_s"],
        "dropped": sum(int(s["dropped"]) for s in states),
        "buckets": {b: torch.cat(keys) for b, keys in buckets.items()},
    }


def merge_pending(states: list[dict | None]) -> dict | None:
    """The gathered rows of every rank as one (`OnlineLearner.state`'s "pending")."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    names = present[0]["batch"]
    return {
        "batch": {k: torch.cat([s["batch"][k] for s in present]) for k in names},
        "kinds": [kind for s in present for kind in s["kinds"]],
    }


class ParallelTrainer(Trainer):
    """`Trainer` for one rank: the same resume, snapshots and telemetry, a lockstep loop."""

    def __init__(self, *args: Any, link: GroupLink, **kwargs: Any) -> None:
        """As Trainer's, with the ranks' link; its store must be a `GroupStore`."""
        self.link = link
        super().__init__(*args, **kwargs)
        if link.rank:  # after a resume rank 0 holds the gathered rows and drop count of all
            self.learner.pending.clear()
            self.learner.deduper.dropped = 0
        # Its own partitions' offsets: a snapshot merges every rank's.
        mine = {str(p) for p in self.source.partitions()}
        self.offsets = {p: o for p, o in self.offsets.items() if p in mine}
        self.parallel = ParallelLearner(self.learner, link)

    def run(self) -> TrainerOutcome:
        """Step in lockstep with the other ranks until the group agrees to stop."""
        state = RunState(idle_since=time.monotonic())
        progress = ProgressLine(
            lambda line: log.info(
                "progress run=%s rank=%d %s", self.config.run, self.link.rank, line
            ),
            unit="examples",
            every_s=self.config.progress_every_s,
        )
        while True:
            idle = self._wait_for_next(state)
            expected = self.source.partitions() - self.ended
            every = self.link.gather((self._local_stop(state, idle), not expected))
            reason = next((r for r, _ in every if r is not None), None)
            if reason is None and self.config.until_end and all(done for _, done in every):
                reason = "end-of-stream"
            if reason is not None:
                break
            item = self._merge.pop(expected, wait_for_all=True) if expected else None
            rows = None if item is None else item[1]
            # A heartbeat or an end marker has nothing to train: as the trainer alone skips it.
            self._step(state, rows if rows is not None and len(rows.impression_ids) else None)
            if item is not None:
                message, decoded = item
                if decoded is not None and decoded.end:
                    self.ended.add(message.partition)
                self.offsets[str(message.partition)] = message.offset + 1
            self._maybe_snapshot()
            self._report(progress, state)
        self._snapshot_if_new()
        self._report(progress, state, force=True)
        log.info(
            "trainer stopped run=%s rank=%d reason=%s batches=%d examples_seen=%d",
            self.config.run, self.link.rank, reason, state.batches, self.learner.examples_seen,
        )  # fmt: skip
        return TrainerOutcome(
            reason=reason,
            batches=state.batches,
            examples_seen=self.learner.examples_seen,
            duplicates_dropped=self.learner.deduper.dropped,
            last_snapshot=self.last_snapshot,
        )

    def _wait_for_next(self, state: RunState) -> bool:
        """Fetch until this rank's next mini-batch is known (or its partitions all ended);
        True once idle for idle_timeout_s, or on a stop request."""
        while True:
            expected = self.source.partitions() - self.ended
            if not expected or self._merge.ready(expected) or self.stop_requested.is_set():
                return False
            self._check_broker()
            if not self._fetch(state, expected):
                return True

    def _local_stop(self, state: RunState, idle: bool) -> str | None:
        """Why this rank would stop now (None: it would go on); the group stops on any."""
        if self.stop_requested.is_set():
            return "signal"
        if self._batch_limit_reached(state):
            return "max-batches"
        return "idle-timeout" if idle else None

    def _step(self, state: RunState, rows: LabeledRows | None) -> None:
        result = self.parallel.step(rows)
        if rows is not None:
            state.batches += 1
            self._validate(rows, result)
            self.metrics.batches.inc()
        self.metrics.examples.inc(result.trained)
        self.metrics.duplicates.inc(result.dropped)
        if not np.isnan(result.loss):
            state.loss = result.loss
            self.metrics.loss.set(result.loss)

    def _snapshot_if_new(self) -> None:
        stored = {} if self.last_snapshot is None else self.last_snapshot.offsets
        mine = {p: o for p, o in self.offsets.items() if stored.get(p) != o}
        new = self.learner.examples_seen != self._snapshot_examples or bool(mine)
        if self.link.any(new) and self._trained_enough():
            self.snapshot()
