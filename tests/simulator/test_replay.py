"""Replay ordering and markers, with a fake publisher (no broker)."""

from __future__ import annotations

import pytest

from simulator.errors import ReplayError
from simulator.records import LogRecord
from simulator.replay import ReplayConfig, replay
from streaming.events import Click, Conversion, EndOfStream, Heartbeat, Impression, decode_event
from streaming.topics import TopicNames


class FakePublisher:
    """Records every message in send order."""

    def __init__(self, partitions: int = 2) -> None:
        self.sent: list[tuple[str, bytes | None, int | None, object]] = []
        self.flushed = False
        self.n = partitions

    def send(self, topic, value, *, key=None, partition=None):
        self.sent.append((topic, key, partition, decode_event(value)))

    def flush(self):
        self.flushed = True

    def partitions(self, topic):
        return self.n


def _record(i: int, ts: int, *, click: int | None = None, conv: int | None = None) -> LogRecord:
    return LogRecord(
        impression_id=str(i), user_id=f"u{i}", ts=ts, click_ts=ts if click is None else click,
        sale=int(conv is not None), conversion_ts=conv, amount=3.5 if conv else 0.0,
        features={"device_type": "d"}, conv_type="t", scenario="s",
    )  # fmt: skip


def _events(pub: FakePublisher):
    return [e for _, _, _, e in pub.sent if not isinstance(e, Heartbeat | EndOfStream)]


def test_events_come_out_in_event_time_order_with_delayed_conversions():
    records = [
        _record(1, 100, conv=250),
        _record(2, 120, conv=120),  # converts at its click time
        _record(3, 200),
        _record(4, 300, conv=10_000),
    ]
    pub = FakePublisher()
    summary = replay(records, pub, ReplayConfig(heartbeat_every=10_000))
    order = [(type(e).__name__, e.impression_id, e.ts) for e in _events(pub)]
    assert order == [
        ("Impression", "1", 100), ("Click", "1", 100),
        ("Impression", "2", 120), ("Click", "2", 120), ("Conversion", "2", 120),
        ("Impression", "3", 200), ("Click", "3", 200),
        ("Conversion", "1", 250),
        ("Impression", "4", 300), ("Click", "4", 300),
        ("Conversion", "4", 10_000),
    ]  # fmt: skip
    assert summary.counts == {"impressions": 4, "clicks": 4, "conversions": 3}
    assert summary.sales == 3 and summary.first_ts == 100 and summary.last_ts == 10_000
    assert pub.flushed
    conversion = next(e for e in _events(pub) if isinstance(e, Conversion))
    assert conversion.amount == 3.5 and conversion.user_id == "u2"


def test_messages_are_keyed_by_impression_id_on_named_topics():
    pub = FakePublisher()
    topics = TopicNames(impressions="i", clicks="c", conversions="v")
    replay([_record(7, 5, conv=9)], pub, ReplayConfig(topics=topics))
    keyed = [(t, k, p, type(e)) for t, k, p, e in pub.sent if k is not None]
    assert keyed == [
        ("i", b"7", None, Impression),
        ("c", b"7", None, Click),
        ("v", b"7", None, Conversion),
    ]


def test_heartbeats_reach_every_partition_and_end_marker_closes():
    pub = FakePublisher(partitions=3)
    records = [_record(i, ts) for i, ts in enumerate([0, 30, 61, 62, 200, 205])]
    summary = replay(records, pub, ReplayConfig(heartbeat_every=60))
    markers = [(t, p, e) for t, k, p, e in pub.sent if k is None]
    beats = [(t, p, e.ts) for t, p, e in markers if isinstance(e, Heartbeat)]
    # One round when the clock crosses 60 (at the event at 61), one when it crosses 120/180.
    assert sorted({ts for _, _, ts in beats}) == [61, 200] and summary.heartbeats == 2
    assert len(beats) == 2 * 3 * 3
    assert {(t, p) for t, p, _ in beats} == {
        (t, p) for t in ("impressions", "clicks", "conversions") for p in range(3)
    }
    ends = markers[-9:]
    assert all(isinstance(e, EndOfStream) and e.ts == 205 for _, _, e in ends)
    # No event after a heartbeat is older than the heartbeat.
    last_beat = None
    for _, _, _, e in pub.sent:
        if isinstance(e, Heartbeat):
            last_beat = e.ts
        elif last_beat is not None and not isinstance(e, EndOfStream):
            assert e.ts >= last_beat


def test_later_click_waits_in_event_time():
    pub = FakePublisher()
    replay([_record(1, 10, click=50, conv=60), _record(2, 20)], pub)
    order = [(type(e).__name__, e.impression_id) for e in _events(pub)]
    assert order == [
        ("Impression", "1"),
        ("Impression", "2"),
        ("Click", "2"),
        ("Click", "1"),
        ("Conversion", "1"),
    ]


def test_window_of_days_keeps_conversions_of_kept_clicks():
    day = 86_400
    records = [_record(i, i * day // 2, conv=i * day // 2 + 3 * day) for i in range(8)]
    pub = FakePublisher()
    summary = replay(records, pub, ReplayConfig(start_day=1, days=1.5))
    kept = {e.impression_id for e in _events(pub)}
    assert kept == {"2", "3", "4"} and summary.counts["conversions"] == 3


def test_speed_paces_by_the_event_clock():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    records = [_record(i, 1000 + 100 * i) for i in range(5)]
    replay(records, FakePublisher(), ReplayConfig(speed=50.0), sleep=sleep, clock=lambda: now[0])
    assert sum(slept) == pytest.approx(400 / 50.0)


def test_bad_config_is_refused():
    with pytest.raises(ReplayError, match="speed"):
        ReplayConfig(speed=0)
    with pytest.raises(ReplayError, match="heartbeat_every"):
        ReplayConfig(heartbeat_every=0)
