"""Replay a log as a live stream: impressions, clicks and conversions in event-time order.

A source yields records sorted by impression time; each record gives an impression at
`ts`, a click at `click_ts` (if any) and a conversion at `conversion_ts` (if any, never
before its click). Clicks and conversions that lie in the future wait in a heap of
pre-encoded messages, so the stream comes out merged in event time (ties: the earlier
event first, and an impression before its own click before its own conversion). Only
encoded bytes wait in the heap: a 30-day attribution window of pending conversions of
the real log fits in memory.

Markers: whenever the event clock crosses a multiple of `heartbeat_every` seconds, a
`Heartbeat(ts=T)` goes to every partition of every source topic, T being the time of the
next event: no event sent after it is older than T. At the end an `EndOfStream(ts=last)`
goes the same way, then the publisher is flushed.

Pacing: `speed` event seconds per wall second (the event clock is held to the wall
clock); `speed=None` publishes as fast as the publisher takes it.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from simulator.errors import ReplayError
from simulator.records import LogRecord
from streaming.events import (
    Click,
    Conversion,
    EndOfStream,
    Heartbeat,
    Impression,
    encode_event,
    format_event_time,
)
from streaming.topics import TopicNames

DAY_S = 86_400


class Publisher(Protocol):
    """Where the replay sends messages; Kafka in production, a list in tests.

    send: queue one message (key None and an explicit partition for markers); may raise
    ReplayError for an earlier failed send. flush: block until everything queued is
    delivered, raising ReplayError if anything failed. partitions: the partition count
    of a topic.
    """

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None
    ) -> None: ...

    def flush(self) -> None: ...

    def partitions(self, topic: str) -> int: ...


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    """How to replay.

    Attributes:
        topics: the source topic names.
        speed: event seconds per wall second, None for no pacing.
        start_day: replay only impressions in [first + start_day, first + start_day + days) days of
            the log (None: to the end); conversions of those clicks are replayed even when they fall
            after the window, so their labels stay complete.
        days: replay only impressions in [first + start_day, first + start_day + days) days of the
            log (None: to the end); conversions of those clicks are replayed even when they fall
            after the window, so their labels stay complete.
        heartbeat_every: event seconds between watermark heartbeats.
    """

    topics: TopicNames = field(default_factory=TopicNames)
    speed: float | None = None
    start_day: float = 0.0
    days: float | None = None
    heartbeat_every: int = 60

    def __post_init__(self) -> None:
        # `not x > 0` rather than `x <= 0`: NaN fails the rule too.
        if self.speed is not None and not 0 < self.speed < math.inf:
            raise ReplayError(
                f"ReplayConfig.speed must be positive (event seconds per wall second), "
                f"got {self.speed}"
            )
        if self.heartbeat_every < 1:
            raise ReplayError(
                f"ReplayConfig.heartbeat_every must be at least 1 second, got {self.heartbeat_every}"
            )
        if not 0 <= self.start_day < math.inf:
            raise ReplayError(f"ReplayConfig.start_day must be >= 0, got {self.start_day}")
        if self.days is not None and not 0 < self.days < math.inf:
            raise ReplayError(f"ReplayConfig.days must be > 0, got {self.days}")


@dataclass(kw_only=True)
class ReplaySummary:
    """What a replay published: events per topic, markers, sale rate, event-time span, speed."""

    counts: dict[str, int]
    records: int = 0
    sales: int = 0
    heartbeats: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    wall_s: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary as printed at the end of `mmn replay`."""
        span = "no events"
        if self.first_ts is not None and self.last_ts is not None:
            days = (self.last_ts - self.first_ts) / DAY_S
            first, last = format_event_time(self.first_ts), format_event_time(self.last_ts)
            span = f"{first} .. {last} ({days:.1f} days)"
        rate = self.sales / self.records if self.records else 0.0
        return [
            *(f"{topic:>14}: {n:,} events" for topic, n in self.counts.items()),
            f"{'markers':>14}: {self.heartbeats:,} heartbeat rounds + end of stream",
            f"{'sale rate':>14}: {rate:.2%} of {self.records:,} impressions",
            f"{'event time':>14}: {span}",
            f"{'wall time':>14}: {self.wall_s:.1f}s, {self.events_per_s:,.0f} events/s",
        ]


class ReplayProgress(Protocol):
    """Where the replay reports how far it got (`mmn replay` shows a terminal progress line)."""

    def update(self, count: int, ts: int) -> None:
        """count events sent so far, the last at event time ts."""

    def close(self) -> None:
        """The replay is over."""


def _window(records: Iterable[LogRecord], config: ReplayConfig) -> Iterator[LogRecord]:
    """The records whose impression lies in the configured window of days."""
    start = end = None
    for record in records:
        if start is None:
            start = record.ts + int(config.start_day * DAY_S)
            end = None if config.days is None else start + int(config.days * DAY_S)
        if record.ts < start:
            continue
        if end is not None and record.ts >= end:
            return
        yield record


class _Replay:
    """One replay's state: pending delayed events, the event clock, heartbeats, the summary."""

    def __init__(
        self,
        publisher: Publisher,
        config: ReplayConfig,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.publisher, self.config, self.sleep, self.clock = publisher, config, sleep, clock
        topics = config.topics
        self.summary = ReplaySummary(counts={t: 0 for t in topics.sources})
        self.markers = [(t, p) for t in topics.sources for p in range(publisher.partitions(t))]
        self.pending: list[tuple[int, int, str, bytes, bytes]] = []  # (ts, seq, topic, key, value)
        self.seq = 0
        self.next_heartbeat: int | None = None
        self.wall_start = clock()
        self.event_start: int | None = None

    def advance(self, ts: int) -> None:
        """Pace to the event clock and send a heartbeat round when it crosses a boundary."""
        config, summary = self.config, self.summary
        if self.event_start is None:
            self.event_start = summary.first_ts = ts
        if config.speed is not None:
            ahead = (ts - self.event_start) / config.speed - (self.clock() - self.wall_start)
            if ahead > 0.002:
                self.sleep(ahead)
        if self.next_heartbeat is None or ts >= self.next_heartbeat:
            if self.next_heartbeat is not None:
                self.to_every_partition(encode_event(Heartbeat(ts=ts)))
                summary.heartbeats += 1
            self.next_heartbeat = (ts // config.heartbeat_every + 1) * config.heartbeat_every
        summary.last_ts = ts

    def to_every_partition(self, marker: bytes) -> None:
        for topic, partition in self.markers:
            self.publisher.send(topic, marker, partition=partition)

    def drain(self, until: int | None) -> None:
        """Send the delayed events due by event time until (all of them when None)."""
        pending, send, counts = self.pending, self.publisher.send, self.summary.counts
        while pending and (until is None or pending[0][0] <= until):
            ts, _, topic, key, value = heapq.heappop(pending)
            self.advance(ts)
            send(topic, value, key=key)
            counts[topic] += 1

    def later(self, ts: int, topic: str, key: bytes, value: bytes) -> None:
        heapq.heappush(self.pending, (ts, self.seq, topic, key, value))
        self.seq += 1

    def record(self, record: LogRecord) -> None:
        """Send a record's impression (and a click at the same time); hold back the rest."""
        self.drain(record.ts)
        self.advance(record.ts)
        topics, send, summary = self.config.topics, self.publisher.send, self.summary
        key = record.impression_id.encode()
        ident = {"impression_id": record.impression_id, "user_id": record.user_id}
        impression = Impression(
            **ident,
            ts=record.ts,
            conv_type=record.conv_type,
            scenario=record.scenario,
            features=record.features,
        )
        send(topics.impressions, encode_event(impression), key=key)
        summary.counts[topics.impressions] += 1
        summary.records += 1
        if record.click_ts is not None:
            click = encode_event(Click(**ident, ts=record.click_ts))
            if record.click_ts == record.ts:
                send(topics.clicks, click, key=key)
                summary.counts[topics.clicks] += 1
            else:
                self.later(record.click_ts, topics.clicks, key, click)
        if record.sale and record.conversion_ts is not None:
            summary.sales += 1
            conversion = Conversion(**ident, ts=record.conversion_ts, amount=record.amount)
            self.later(record.conversion_ts, topics.conversions, key, encode_event(conversion))

    def finish(self) -> ReplaySummary:
        """Send what is left, then the end-of-stream markers; the summary."""
        self.drain(None)
        self.to_every_partition(encode_event(EndOfStream(ts=self.summary.last_ts or 0)))
        self.publisher.flush()
        self.summary.wall_s = self.clock() - self.wall_start
        return self.summary


def replay(
    records: Iterable[LogRecord],
    publisher: Publisher,
    config: ReplayConfig | None = None,
    *,
    progress: ReplayProgress | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Publish the records' events in event-time order, with heartbeats and an end marker."""
    config = config or ReplayConfig()
    run = _Replay(publisher, config, sleep, clock)
    for record in _window(records, config):
        run.record(record)
        if progress is not None:
            progress.update(run.summary.events, record.ts)
    summary = run.finish()
    if progress is not None:
        progress.update(summary.events, summary.last_ts or 0)  # the conversions drained last
        progress.close()
    return summary
