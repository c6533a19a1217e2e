"""The A/B evaluator daemon: score each click with its arm's serving snapshot, against its final label.

It reads the `minibatches` topic (the joiner's examples, with each partition's watermark
and end marker; the `examples` topic has neither), assigns every user to an arm by a
salted hash (`ops.evaluation.assignment`), holds each click until its label is final
(`ops.evaluation.finality`), and then scores it with the arm's serving snapshot: the
newest one with a watermark <= the impression time, read from the registry where the
trainers register (and announce) their snapshots (`ops.evaluation.serving`). In shadow
mode every arm scores every click, so that the arms can be compared on the same examples.

Batches and restarts. The clicks of one partition that become final are gathered and
sealed into a batch when they number `flush_rows`, when the partition's watermark enters
a later `flush_every_event_s` window than the batch's first click, or at the end of the
stream: a function of the partition's messages alone, so every batch, and every float the
model computes over it, is the same at any replay speed. Sealed batches are scored
SCORE_BATCHES of a partition at a time (the rest once the partition has ended), each
arm's clicks grouped by serving snapshot so that forward calls are large; a group is
scored once every arm's serving snapshot for it is determined, and its rows are written
together with the offsets to resume from (the first decision of every click not yet
written) in one transaction. Killed at any point, a restarted evaluator reads on from
those offsets, skips the clicks already written, rebuilds the open ones and ends with the
same rows. A stop by signal or idle timeout leaves an incomplete group unwritten: the next
start reads it again.

Status. The experiment's row says what its evaluator is doing: `running` (written at start
and at least every HEARTBEAT_S while it runs, with each batch), `finished` (end of
stream), `stopped` (a signal or the idle timeout, with the time and which) or `failed`
(an error, with its message). Only SIGKILL or a lost machine leave `running` behind, and
then the time of the last heartbeat tells.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import EvaluationError
from ops.evaluation.assignment import Split
from ops.evaluation.experiment import EvaluatorConfig
from ops.evaluation.finality import (
    Final,
    FinalLabels,
    PartitionState,
    agreed_windows,
    low_water_mark,
    rows_of,
)
from ops.evaluation.monitoring import EvaluatorMonitor
from ops.evaluation.serving import ModelCache, ServingIndex, predict_rows
from ops.store.experiments import (
    commit_results,
    decided_impressions,
    ensure_experiment,
    record_status,
)
from ops.streams.signals import StopRequest
from streaming.errors import StreamingError
from streaming.events import format_event_time
from streaming.source import Message, Source

log = logging.getLogger("ops.evaluation.evaluator")

# Sealed batches of a partition scored and written together: a batch of final clicks spans
# the attribution window, so one serving snapshot serves few of its rows (a median of 39 per
# forward call measured on the demo's log), and a small call costs nearly what a large one does.
SCORE_BATCHES = 24
HEARTBEAT_S = 10.0  # wall seconds between `running` status writes while nothing else is written


@dataclass(frozen=True)
class EvaluatorOutcome:
    reason: str
    rows_written: int


class Evaluator:
    """The daemon loop of one experiment; `run()` returns when a stop condition is met."""

    def __init__(
        self,
        config: EvaluatorConfig,
        *,
        Session: sessionmaker[Session],
        source: Source,
        decode: Callable[[bytes], Any],
        stop: threading.Event | None = None,
        monitor: EvaluatorMonitor | None = None,
        device: str = "cpu",  # where the arms' snapshots are loaded and score
    ) -> None:
        self.config = config
        self.monitor = monitor or EvaluatorMonitor(config.experiment)
        self.Session = Session
        self.source = source
        self.decode = decode
        self.stop_requested = stop or threading.Event()
        self.split = Split(config.weights, salt=config.record()["salt"])
        self.runs = dict(config.arms)
        self.serving = ServingIndex(Session, list(self.runs.values()))
        # A batch of final clicks spans the attribution window: several snapshots per arm serve
        # it, in version order, and a smaller cache reloads each per batch (46 loads, 79 batches).
        self.models = ModelCache(size=8 * len(self.runs), links=self.serving.links, device=device)
        with Session.begin() as session:
            experiment = ensure_experiment(session, config.experiment, config.record())
            record_status(session, experiment, "running", None)
            offsets, self.end_offsets = dict(experiment.offsets), dict(experiment.end_offsets)
            self.done = decided_impressions(session, experiment)
        self.parts = {p: self._new_partition(offsets.get(str(p), 0)) for p in source.partitions()}
        # Ended: its end marker was read, and nothing before it is left to re-read.
        self.ended = {
            p for p in self.parts if offsets.get(str(p), 0) > self.end_offsets.get(str(p), 1 << 62)
        }
        self.rows_written = 0
        self.scored: dict[str, int] = dict.fromkeys(self.runs, 0)
        self._last_refresh = 0.0
        self._last_heartbeat = time.monotonic()
        self._waiting_since: float | None = None
        self.waiting_for: str | None = None  # which arm has no serving snapshot, since when
        self.label_windows: tuple[int, int] | None = None  # the joiner's (O, A), as read
        self.source.seek(offsets)
        log.info(
            "evaluator started experiment=%s arms=%s shadow=%s resume_offsets=%s decided=%d",
            config.experiment,
            self.runs,
            config.shadow,
            offsets,
            len(self.done),
        )

    def _new_partition(self, offset: int) -> PartitionState:
        labels = FinalLabels()  # the windows come with the mini-batches
        labels.done = self.done  # one set: impression ids are unique across partitions
        return PartitionState(labels=labels, next_offset=offset)

    def run(self) -> EvaluatorOutcome:
        """Consume, finalise, score and write until a stop condition; record how it ended."""
        # What start-up made (torch, SQLAlchemy, the loaded models) lives for the whole run:
        # the cyclic collector's full passes skip it (they cost 20% of a run otherwise).
        gc.freeze()
        try:
            outcome = self._run()
        except Exception as exc:
            self._record_status("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            gc.unfreeze()
        if outcome.reason == "end-of-stream":
            self._record_status("finished", "end of stream")
        elif outcome.reason == "signal":
            stop = self.stop_requested
            self._record_status(
                "stopped", stop.reason if isinstance(stop, StopRequest) else StopRequest.reason
            )
        else:
            self._record_status("stopped", f"{outcome.reason} ({self.config.idle_timeout_s:g}s)")
        return outcome

    def _record_status(self, state: str, detail: str | None) -> None:
        """Write the status; a registry that cannot take it is logged, not raised over the cause."""
        try:
            with self.Session.begin() as session:
                experiment = ensure_experiment(
                    session, self.config.experiment, self.config.record()
                )
                record_status(session, experiment, state, detail)
        except Exception as exc:
            log.error("cannot record status %s of experiment %s: %r",
                      state, self.config.experiment, exc)  # fmt: skip
            return
        self._last_heartbeat = time.monotonic()

    def _run(self) -> EvaluatorOutcome:
        idle_since = time.monotonic()
        last_progress = time.monotonic()
        while True:
            if self.stop_requested.is_set():
                return self._stop("signal")
            if self.config.until_end and self._all_ended() and not self._backlog():
                self._commit([], finished=True)
                return self._stop("end-of-stream")
            self._complete_sealed()
            full = self._backlog() > max(64, SCORE_BATCHES * len(self.parts))
            messages = [] if full else self.source.poll(self.config.poll_timeout_s)
            for message in messages:
                self._consume(message)
            if messages:
                idle_since = time.monotonic()
            elif (
                self.config.idle_timeout_s is not None
                and not any(self._ready(p, part) for p, part in self.parts.items())
                and time.monotonic() - idle_since >= self.config.idle_timeout_s
            ):
                return self._stop("idle-timeout")
            if time.monotonic() - last_progress >= self.config.progress_every_s:
                self._progress()
                last_progress = time.monotonic()
            if time.monotonic() - self._last_heartbeat >= HEARTBEAT_S:
                self._record_status("running", self.waiting_for)

    def _consume(self, message: Message) -> None:
        part = self.parts[message.partition]
        try:
            batch = self.decode(message.value)
        except StreamingError as exc:
            log.error("undecodable mini-batch skipped partition=%d offset=%d: %s",
                      message.partition, message.offset, exc)  # fmt: skip
            part.next_offset = message.offset + 1
            return
        where = f"the mini-batch at partition {message.partition} offset {message.offset}"
        self.label_windows = agreed_windows(self.label_windows, batch.label_windows, where)
        part.labels.windows = self.label_windows
        part.queue += part.labels.add(rows_of(batch, message.offset))
        watermark = batch.watermark
        if watermark is not None and np.isfinite(watermark):
            if part.watermark is None or watermark > part.watermark:
                part.watermark = int(watermark)
            part.queue += part.labels.advance(part.watermark)
        part.next_offset = message.offset + 1
        if batch.end:
            part.queue += part.labels.end()
            self.end_offsets[str(message.partition)] = message.offset
            self.ended.add(message.partition)
        due = len(part.queue) >= self.config.flush_rows or batch.end
        if part.queue and part.watermark is not None:
            every = self.config.flush_every_event_s
            due = due or part.watermark // every > part.queue[0].final_ts // every
        if due and part.queue:
            part.sealed.append(part.queue)
            part.queue = []

    def _complete_sealed(self) -> None:
        """Score and write the sealed batches whose serving snapshots are determined, in order,
        SCORE_BATCHES of a partition at a time (fewer only once the partition has ended).

        The next group of every partition is scored in one round, snapshot by snapshot, so
        that a serving snapshot is loaded once for all partitions (partitions cover the same
        event time); each group's forward passes are what they would be alone.
        """
        while True:
            groups: list[tuple[PartitionState, int, list[Final]]] = []
            waiting = False
            for p, part in self.parts.items():
                if not self._ready(p, part):
                    continue
                n = min(SCORE_BATCHES, len(part.sealed))
                finals = [final for i in range(n) for final in part.sealed[i]]
                if not self._determined(finals):
                    self._wait(finals)
                    waiting = True
                    break
                self._waiting_since = self.waiting_for = None
                groups.append((part, n, finals))
            scored = self._score([finals for _, _, finals in groups]) if groups else []
            for (part, n, _), rows in zip(groups, scored, strict=True):
                # Off the backlog before the commit computes the offsets to resume from.
                for _ in range(n):
                    part.sealed.popleft()
                self._commit(rows)
            if waiting or not groups:
                return

    def _ready(self, p: int, part: PartitionState) -> bool:
        """Whether the partition's next group of sealed batches is complete.

        Groups are counted from the first batch not written, so they are a function of the
        partition's messages: after a restart (which resumes at a written group's end) as at
        any replay speed, the same clicks share a forward pass, and so the same floats.
        """
        return len(part.sealed) >= SCORE_BATCHES or (bool(part.sealed) and p in self.ended)

    def _determined(self, batch: list[Final]) -> bool:
        latest_ts = max(f.row.ts for f in batch)
        ends = self.end_offsets if self._all_ended() else None
        runs = self.runs.values()
        if all(self.serving.determined(run, latest_ts, ends) for run in runs):
            return True
        if time.monotonic() - self._last_refresh >= 0.5:
            self._last_refresh = time.monotonic()
            self.serving.refresh()
            return all(self.serving.determined(run, latest_ts, ends) for run in runs)
        return False

    def _wait(self, batch: list[Final]) -> None:
        now = time.monotonic()
        latest_ts = max(f.row.ts for f in batch)
        if self._waiting_since is None:
            self._waiting_since = now
            ends = self.end_offsets if self._all_ended() else None
            arms = [f"{arm} (run {run})" for arm, run in self.config.arms
                    if not self.serving.determined(run, latest_ts, ends)]  # fmt: skip
            self.waiting_for = (f"waiting for a serving snapshot of arm {', '.join(arms)} "
                                f"since {format_event_time(int(time.time()))}")  # fmt: skip
            self._record_status("running", self.waiting_for)  # the report shows it
        limit = self.config.snapshot_timeout_s
        if limit is not None and now - self._waiting_since > limit:
            raise EvaluationError(f"no serving snapshot is determined after {limit:.0f}s: "
                                  f"{self.waiting_for} (event time {latest_ts})")  # fmt: skip
        time.sleep(0.05)

    def _score(self, groups: list[list[Final]]) -> list[list[dict[str, Any]]]:
        """Per group, one row per (arm, click): the serving snapshot's prediction (None
        without one). Each arm's snapshots are taken in version order across the groups."""
        assigned = [
            np.array([self.split.arm(f.row.user_id) for f in g], dtype=object) for g in groups
        ]
        times = [np.fromiter((f.row.ts for f in g), dtype=np.int64, count=len(g)) for g in groups]
        out: list[list[dict[str, Any]]] = [[] for _ in groups]
        for arm, run in self.config.arms:
            members = [np.arange(len(g)) if self.config.shadow else np.flatnonzero(a == arm)
                       for g, a in zip(groups, assigned, strict=True)]  # fmt: skip
            versions = [
                self.serving.serving(run, t[m]) for t, m in zip(times, members, strict=True)
            ]
            predictions = [np.full(len(m), np.nan) for m in members]
            for version in np.unique(np.concatenate([v[v >= 0] for v in versions])).tolist():
                known = next(k for k in self.serving.known[run] if k.version == version)
                for g, group in enumerate(groups):
                    picked = np.flatnonzero(versions[g] == version)
                    if len(picked):
                        chosen = [group[i].row for i in members[g][picked].tolist()]
                        predictions[g][picked] = predict_rows(self.models, run, known, chosen)
            for g, group in enumerate(groups):
                ok = versions[g] >= 0
                for i, version, p, scored in zip(members[g].tolist(), versions[g].tolist(),
                                                 predictions[g].tolist(), ok.tolist(), strict=True):  # fmt: skip
                    out[g].append(group[i].record(
                        arm, assigned=assigned[g][i] == arm, version=version if scored else None,
                        p=p if scored else None, window_s=self.config.window_s,
                    ))  # fmt: skip
                self.scored[arm] += int(ok.sum())
        return out

    def _commit(self, rows: list[dict[str, Any]], *, finished: bool = False) -> None:
        watermarks = [p.watermark for p in self.parts.values() if p.watermark is not None]
        experiment_offsets = {str(p): part.resume_offset() for p, part in self.parts.items()}
        with self.Session.begin() as session:
            experiment = ensure_experiment(session, self.config.experiment, self.config.record())
            commit_results(
                session,
                experiment,
                rows,
                offsets=experiment_offsets,
                watermark=min(watermarks) if watermarks else None,
                end_offsets=self.end_offsets,
                finished=finished,
                low_water=self._low_water(),
            )
            record_status(session, experiment, "running", None)
        self._last_heartbeat = time.monotonic()
        self.rows_written += len(rows)
        if rows:
            log.info("batch written experiment=%s rows=%d resume_offsets=%s",
                     self.config.experiment, len(rows), experiment_offsets)  # fmt: skip

    def _low_water(self) -> int | None:
        """What retention must still serve (`ops.store.retention`): a click not read yet was
        decided after the watermark, at most its attribution window after its impression
        (the observation window more: a margin for how the joiner gathers decisions)."""
        if self.label_windows is None:  # nothing read yet: no watermark either
            return None
        lookback = sum(self.label_windows)
        parts = ((part, p in self.ended) for p, part in self.parts.items())
        return low_water_mark(parts, lookback_s=lookback)

    def _backlog(self) -> int:
        return sum(len(p.sealed) for p in self.parts.values())

    def _all_ended(self) -> bool:
        return self.ended >= self.parts.keys()

    def _progress(self) -> None:
        marks = [p.watermark for p in self.parts.values() if p.watermark is not None]
        self.monitor.show(
            scored=self.scored,
            open_clicks=sum(len(p.labels.open) for p in self.parts.values()),
            sealed=self._backlog(),
            watermark=min(marks) if marks else None,
            waiting=self.waiting_for,
        )

    def _stop(self, reason: str) -> EvaluatorOutcome:
        self._progress()
        log.info("evaluator stopped experiment=%s reason=%s rows_written=%d",
                 self.config.experiment, reason, self.rows_written)  # fmt: skip
        return EvaluatorOutcome(reason=reason, rows_written=self.rows_written)
