"""Plausible event times: what the joiner refuses before it can move a watermark.

An event or marker time that is negative or past `MAX_EVENT_TS` (the year 9999: a
timestamp in milliseconds lands there) is implausible, and so is an event time more than
`max_ahead_s` ahead of its topic partition's clock. That clock is confirmed by two
neighbouring events (see `streaming.partition_joiner`), never set by one alone; while a
topic partition has none, no event on it can be judged ahead (and none moves a clock on
its own). The comparison is with the event's own topic partition only: the other topics
are read at their own pace, so judging by them would make the outcome depend on timing.
Heartbeats are only range-checked: they carry the producer's clock across a quiet spell
of the log.

>>> from streaming.events import Click
>>> cfg = LabelConfig(max_ahead_s=3600)
>>> implausible_time(Click(impression_id="1", user_id="u", ts=5000), 1000, cfg)
'event time 5000 is 4000s ahead of the clock 1000 of its topic partition (max ahead 3600s)'
>>> implausible_time(Click(impression_id="1", user_id="u", ts=1597000000000), None, cfg)
'event time 1597000000000 is outside 0..253402300799 (year 9999)'
"""

from __future__ import annotations

from streaming.events import MAX_EVENT_TS, EndOfStream, Event, Heartbeat, Marker
from streaming.labels import LabelConfig


def implausible_time(event: Event | Marker, clock: int | None, labels: LabelConfig) -> str | None:
    """Why the event's time cannot be right, or None when it is plausible.

    clock: the confirmed clock of the event's topic partition (None: not confirmed yet).
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
    if clock is not None and ts > clock + labels.max_ahead_s:
        return (
            f"event time {ts} is {ts - clock}s ahead of the clock {clock} "
            f"of its topic partition (max ahead {labels.max_ahead_s}s)"
        )
    return None
