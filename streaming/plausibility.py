"""Plausible event times: what the joiner refuses before it can move a watermark.

An event or marker time that is negative or past `MAX_EVENT_TS` (the year 9999: a
timestamp in milliseconds lands there), and an event time more than `max_ahead_s` ahead of
its topic partition's newest time (of the partition's other topics while it has none), is
implausible. Per topic, not per partition: a topic read ahead of the others (a backlog) is
legitimately far ahead of the partition's watermark. Heartbeats are only range-checked:
they carry the producer's clock across a quiet spell of the log.

>>> from streaming.events import Click
>>> cfg = LabelConfig(max_ahead_s=3600)
>>> implausible_time(Click(impression_id="1", user_id="u", ts=5000), 1000, [1000, None, None], cfg)
'event time 5000 is 4000s ahead of the newest event time 1000 of its topic partition (max ahead 3600s)'
>>> implausible_time(Click(impression_id="1", user_id="u", ts=1597000000000), None, [None] * 3, cfg)
'event time 1597000000000 is outside 0..253402300799 (year 9999)'
"""

from __future__ import annotations

from collections.abc import Sequence

from streaming.events import MAX_EVENT_TS, EndOfStream, Event, Heartbeat, Marker
from streaming.labels import LabelConfig


def implausible_time(
    event: Event | Marker,
    newest: int | None,
    partition_newest: Sequence[int | None],
    labels: LabelConfig,
) -> str | None:
    """Why the event's time cannot be right, or None when it is plausible.

    newest: the newest time on the event's topic partition; partition_newest: those of
    the partition's three topics (None: nothing seen yet).
    """
    ts = event.ts
    if not 0 <= ts <= MAX_EVENT_TS:
        shown = ts if abs(ts) < 10**30 else f"{'-' if ts < 0 else ''}~2^{abs(ts).bit_length()}"
        return f"event time {shown} is outside 0..{MAX_EVENT_TS} (year 9999)"
    if isinstance(event, Heartbeat | EndOfStream):
        # The producer's own clock: a heartbeat carries the time of its next event, so a
        # quiet spell of the log moves the clock before the first event after it. An end
        # marker ends its topic whatever its time.
        return None
    if newest is None:
        known = [t for t in partition_newest if t is not None]
        newest = min(known) if known else None
    if newest is not None and ts > newest + labels.max_ahead_s:
        return (
            f"event time {ts} is {ts - newest}s ahead of the newest event time {newest} "
            f"of its topic partition (max ahead {labels.max_ahead_s}s)"
        )
    return None
