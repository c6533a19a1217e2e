"""The joiner of one source partition: facts into a mapping, decisions out as the watermark moves.

Pure logic (no Faust, no Kafka): `process(source, offset, value)` takes one message of
the partition's impressions (source 0), clicks (1) or conversions (2) topic and returns
what to publish. State lives in an injected `MutableMapping` (a dict in tests, the Faust
table in the worker), so a restarted worker resumes from it.

Watermark: per source topic a clock; the partition's watermark is the minimum over the
three topics minus the allowed lateness (an `EndOfStream` makes a topic's clock infinite).
A conversion cannot be declared missing until the conversions topic, not just the clicks
topic, has moved past the deadline.

Clocks (one event cannot move time): a topic partition's clock is the highest time that
two neighbouring accepted events on it both reach, `max(min(previous, current))`, taken
only when the two are within `max_ahead_s` of each other; a heartbeat sets it directly.
So an event far ahead of its neighbours (a bad clock, a test event dated weeks ahead)
moves no watermark: it is joined like any other event, and its decisions wait until the
partition's time really gets there (or the end of stream). Every input is judged against
its own topic partition's history only, so the outcome never depends on how the three
topics, or the partitions, happen to interleave.

Release and batching: due decisions are released in key order (see `streaming.labels`)
and cut into segments: after `batch_size` examples, before a decision `max_span_s` or
more after the segment's first one, when the watermark passes that span, and at the end
of stream. Cuts depend on the released sequence only, so the segments are the same at
any replay speed. The caller publishes a segment, waits for delivery, then calls
`commit(segment)`, which persists the release cursor and forgets finished records; and it
calls `checkpoint()` before the consumer offsets of what it processed may be committed.

Plausibility (`streaming.plausibility`): an event with an impossible time, or one too far
ahead of its topic partition's clock, is `implausible-time` and moves no watermark. A
tombstone or any payload that does not decode is `malformed`; so is an impression id
starting with `~` (the store's own keys). An input larger than `BatchConfig.event_bytes`
is `too-large`, so that every message its facts lead to (table record, example,
mini-batch) can be sent; a mini-batch is cut before it outgrows
`BatchConfig.max_message_bytes`. A dead letter keeps the input's size and first bytes.

Restarts (at-least-once): the meta entry written by `commit` holds the applied offsets,
the per-topic clocks and last times, and the cursor. Messages at or below the applied offsets are
skipped; later ones are re-applied (a fact stored with the same offset is recognized as
the same message); decisions after the cursor are taken again, identical to the first
time, so the output after a restart repeats only exact copies.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import MutableMapping
from typing import Any

from streaming.errors import SchemaError
from streaming.events import (
    Click,
    Conversion,
    EndOfStream,
    Heartbeat,
    Impression,
    decode_event,
)
from streaming.example import DEADLETTER_DETAIL_CHARS, DEADLETTER_VALUE_BYTES, DeadLetter, Example
from streaming.labels import Decision, LabelConfig, Record, decide, horizon
from streaming.minibatch import EncodedSize
from streaming.plausibility import implausible_time
from streaming.segments import BatchConfig, Segment, Step

SOURCE_EVENTS = (Impression, Click, Conversion)


def meta_key(partition: int) -> str:
    """The mapping key of a partition's progress entry (never an impression id: '~' prefix)."""
    return f"~meta/{partition}"


class PartitionJoiner:
    """Joins one partition's three source topics into label decisions and segments."""

    def __init__(
        self,
        *,
        partition: int,
        store: MutableMapping[str, Any],
        labels: LabelConfig | None = None,
        batches: BatchConfig | None = None,
        topics: tuple[str, str, str] = ("impressions", "clicks", "conversions"),
    ) -> None:
        self.partition = partition
        self.store = store
        self.labels = labels or LabelConfig()
        self.batches = batches or BatchConfig()
        self.topics = topics
        meta = store.get(meta_key(partition)) or {}
        self.clock: list[int | None] = list(meta.get("m", [None, None, None]))
        self.last: list[int | None] = list(meta.get("l", self.clock))
        self.ended: list[bool] = list(meta.get("e", [False, False, False]))
        self.applied: list[int] = list(meta.get("o", [-1, -1, -1]))
        cursor = meta.get("cur")
        self.cursor: tuple[int, int, str] | None = tuple(cursor) if cursor else None
        self.committed = self.cursor
        self.committed_batch = {k: meta.get(k) for k in ("seq", "wm", "end")}
        self.seq: int = meta.get("seq") or 0
        self.batch_wm: int | None = meta.get("wm")
        self.end_sent: bool = meta.get("end") or False
        self.pending: list[Decision] = []
        self.pending_examples: list[Example] = []
        self.pending_size = EncodedSize()
        self.wakeups: list[tuple[int, str]] = []
        self.finished: set[str] = set()
        self.unsaved_markers = False
        self._update_watermark()
        for key, record in list(store.items()):
            if not key.startswith("~") and record.get("p") == partition:
                self._schedule(key, record)

    @property
    def watermark(self) -> float:
        """Event time before which every decision of this partition can be taken."""
        return self._watermark

    def _update_watermark(self) -> None:
        times: list[float] = []
        for ts, end in zip(self.clock, self.ended, strict=True):
            if end:
                times.append(math.inf)
            elif ts is None:  # a source not heard from yet holds the watermark back entirely
                self._watermark = -math.inf
                return
            else:
                times.append(ts)
        self._watermark = min(times) - self.labels.allowed_lateness_s

    @property
    def done(self) -> bool:
        """True once all three topics ended and the end segment was cut."""
        return self.end_sent

    def process(self, source: int, offset: int, value: bytes | None) -> Step:
        """Apply one message of source topic `source` (0, 1, 2) at `offset`; None is a tombstone."""
        step = Step()
        if offset <= self.applied[source]:
            # Applied before the last commit: a redelivery after a restart. Its decisions
            # may not have been committed yet, so release them again.
            self._release(step)
            return step
        self.applied[source] = offset
        if value is None:  # a tombstone: Kafka allows it, no event is one
            step.deadletters.append(self._letter("malformed", "no value", source, offset, b""))
            return step
        if len(value) > self.batches.event_bytes:
            detail = (
                f"{len(value):,} bytes, more than the {self.batches.event_bytes:,} an event may "
                f"take (1/32 of --max-message-bytes {self.batches.max_message_bytes:,})"
            )
            step.deadletters.append(self._letter("too-large", detail, source, offset, value))
            return step
        try:
            event = decode_event(value)
        except SchemaError as exc:
            step.deadletters.append(self._letter("malformed", str(exc), source, offset, value))
            return step
        implausible = implausible_time(event, self.clock[source], self.labels)
        if implausible is not None:
            step.deadletters.append(
                self._letter("implausible-time", implausible, source, offset, value)
            )
        elif isinstance(event, Heartbeat | EndOfStream):
            self.ended[source] = self.ended[source] or isinstance(event, EndOfStream)
            self._advance(source, event.ts, marker=True)
            self.unsaved_markers = True
        elif not isinstance(event, SOURCE_EVENTS[source]):
            detail = f"a {event.kind} event on the {self.topics[source]} topic"
            step.deadletters.append(self._letter("malformed", detail, source, offset, value))
        elif event.impression_id.startswith("~"):
            detail = f"impression id {event.impression_id[:40]!r} starts with '~' (reserved)"
            step.deadletters.append(self._letter("malformed", detail, source, offset, value))
        elif event.ts < self.watermark:
            detail = f"event time {event.ts} is behind the watermark {self.watermark}"
            step.deadletters.append(self._letter("late-event", detail, source, offset, value))
        else:
            letter = self._apply(event, source, offset, value)
            if letter is not None:
                step.deadletters.append(letter)
            self._advance(source, event.ts, marker=False)
        self._release(step)
        return step

    def commit(self, segment: Segment) -> None:
        """Record that `segment` was delivered: persist progress, then forget finished records."""
        self.committed = segment.cursor or self.committed
        self.committed_batch = {
            "seq": segment.next_seq,
            "wm": segment.watermark,
            "end": segment.end,
        }
        self._save_progress()
        # After the progress entry, so that a crash in between leaves records, never loses them.
        for impression_id in sorted(self.finished):
            record = self.store.get(impression_id)
            if record is None:
                self.finished.discard(impression_id)
                continue
            decisions = decide(record, impression_id, self.labels)
            if self.committed is not None and decisions[-1].key <= self.committed:
                del self.store[impression_id]
                self.finished.discard(impression_id)

    def checkpoint(self) -> None:
        """Save progress made by markers alone; call before the consumer offsets are committed.

        Markers change nothing but progress, which is otherwise saved with each segment: an
        end-of-stream marker whose offset was committed must not be forgotten by a restart.
        """
        if self.unsaved_markers:
            self._save_progress()

    def _save_progress(self) -> None:
        self.unsaved_markers = False
        self.store[meta_key(self.partition)] = {
            "m": self.clock,
            "l": self.last,
            "e": self.ended,
            "o": self.applied,
            "cur": list(self.committed) if self.committed else None,
            **self.committed_batch,
        }

    def _advance(self, source: int, ts: int, *, marker: bool) -> None:
        """Move the topic's clock: to a marker's time, or to what two neighbouring events reach."""
        last, self.last[source] = self.last[source], ts
        reached: int | None = ts if marker else None
        if not marker and last is not None and abs(ts - last) <= self.labels.max_ahead_s:
            reached = min(ts, last)
        # else: the first event, or one far from its neighbour: it confirms nothing
        current = self.clock[source]
        if reached is not None and (current is None or reached > current):
            self.clock[source] = reached
        self._update_watermark()  # an end marker ends its topic whatever its time

    def _letter(
        self, reason: str, detail: str, source: int, offset: int, value: bytes | None
    ) -> DeadLetter:
        value = b"" if value is None else value
        return DeadLetter(
            reason=reason,
            detail=detail[:DEADLETTER_DETAIL_CHARS],
            topic=self.topics[source],
            partition=self.partition,
            offset=offset,
            value=value[:DEADLETTER_VALUE_BYTES],
            size=len(value),
        )

    def _apply(
        self, event: Impression | Click | Conversion, source: int, offset: int, value: bytes
    ) -> DeadLetter | None:
        record: Record = dict(self.store.get(event.impression_id) or {"p": self.partition})
        slot = ("io", "ko", "co")[source]
        if slot in record:
            if record[slot] == offset:
                return None  # the same message again, re-applied after a restart
            detail = f"impression {event.impression_id!r} already has a {event.kind} (offset {record[slot]})"
            return self._letter(f"duplicate-{event.kind}", detail, source, offset, value)
        record[slot] = offset
        if isinstance(event, Impression):
            record["i"] = {
                "u": event.user_id,
                "t": event.ts,
                "ct": event.conv_type,
                "sc": event.scenario,
                "f": event.features,
            }
        elif isinstance(event, Click):
            record.update(k=event.ts, ku=event.user_id, kb=value.decode())
        else:
            record.update(c=event.ts, cu=event.user_id, cb=value.decode())
        self.store[event.impression_id] = record
        self._schedule(event.impression_id, record)
        return None

    def _schedule(self, impression_id: str, record: Record) -> None:
        decisions = decide(record, impression_id, self.labels)
        for time in {d.label_ts for d in decisions}:
            heapq.heappush(self.wakeups, (time, impression_id))
        end = horizon(record, impression_id, self.labels, decisions)
        heapq.heappush(self.wakeups, (end, impression_id))

    def _release(self, step: Step) -> None:
        watermark = self.watermark
        woken: set[str] = set()
        while self.wakeups and self.wakeups[0][0] < watermark:
            woken.add(heapq.heappop(self.wakeups)[1])
        due: list[Decision] = []
        for impression_id in woken:
            record = self.store.get(impression_id)
            if record is None:
                continue
            decisions = decide(record, impression_id, self.labels)
            due.extend(
                d
                for d in decisions
                if d.label_ts < watermark and (self.cursor is None or d.key > self.cursor)
            )
            if horizon(record, impression_id, self.labels, decisions) < watermark:
                self.finished.add(impression_id)
        for decision in sorted(due, key=lambda d: d.key):
            span_end = self.pending[0].label_ts + self.batches.max_span_s if self.pending else None
            if span_end is not None and decision.label_ts >= span_end:
                step.segments.append(self._cut(span_end, end=False))
            if decision.is_example:
                example = self._example(decision)
                self.pending_size.add(example)
                if self.pending_examples and self.pending_size.bytes > self.batches.minibatch_bytes:
                    # Cut before it: every decision before this one is in the cut.
                    step.segments.append(self._cut(decision.label_ts, end=False))
                    self.pending_size.add(example)
                self.pending_examples.append(example)
            self.pending.append(decision)
            self.cursor = decision.key
            if decision.is_example and len(self.pending_examples) == self.batches.batch_size:
                step.segments.append(self._cut(decision.label_ts, end=False))
        if watermark == math.inf:
            if not self.end_sent:
                last = self.pending[-1].label_ts if self.pending else (self.batch_wm or 0)
                step.segments.append(self._cut(last, end=True))
        elif self.pending and watermark >= self.pending[0].label_ts + self.batches.max_span_s:
            step.segments.append(
                self._cut(self.pending[0].label_ts + self.batches.max_span_s, end=False)
            )

    def _cut(self, watermark: int, *, end: bool) -> Segment:
        decisions, self.pending = self.pending, []
        examples, self.pending_examples = tuple(self.pending_examples), []
        self.pending_size = EncodedSize()
        letters = tuple(self._orphan(d) for d in decisions if not d.is_example)
        self.batch_wm = max(watermark, self.batch_wm) if self.batch_wm is not None else watermark
        seq = None
        if examples or end:
            seq, self.seq = self.seq, self.seq + 1
        self.end_sent = self.end_sent or end
        return Segment(
            partition=self.partition,
            seq=seq,
            examples=examples,
            deadletters=letters,
            watermark=self.batch_wm,
            end=end,
            cursor=decisions[-1].key if decisions else None,
            next_seq=self.seq,
        )

    def _example(self, decision: Decision) -> Example:
        record = self.store[decision.impression_id]
        imp = record["i"]
        return Example(
            impression_id=decision.impression_id,
            user_id=imp["u"],
            ts=imp["t"],
            label_ts=decision.label_ts,
            click=int(decision.name != "non-click"),
            conversion=decision.conversion,
            kind=decision.name,
            conv_type=imp["ct"],
            scenario=imp["sc"],
            features=imp["f"],
        )

    def _orphan(self, decision: Decision) -> DeadLetter:
        record = self.store[decision.impression_id]
        source, offset_key, payload_key = (
            (1, "ko", "kb") if decision.name == "orphan-click" else (2, "co", "cb")
        )
        detail = (
            f"no impression open to click at {record['k']}"
            if source == 1
            else f"no click open to conversion at {record['c']} (attribution window "
            f"{self.labels.attribution_window_s}s)"
        )
        return self._letter(
            decision.name, detail, source, record[offset_key], record[payload_key].encode()
        )
