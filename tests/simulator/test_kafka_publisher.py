"""The replay through kafka-python into the embedded broker, read back; a dead broker fails fast."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from simulator.criteo_search import SearchLog
from simulator.errors import ReplayError
from simulator.kafka_publisher import KafkaPublisher, PublisherConfig
from simulator.replay import ReplayConfig, replay
from simulator.synth import generate, write
from streaming.broker import free_port
from streaming.events import Click, Conversion, EndOfStream, Heartbeat, Impression, decode_event
from streaming.topics import TopicNames, create_topics


def read_until_end(bootstrap: str, topics: tuple[str, ...], timeout_s: float = 60.0) -> dict:
    """Every message of the topics, per topic, read until each partition's EndOfStream."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t))]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    open_parts = set(parts)
    out: dict[str, list] = {t: [] for t in topics}
    deadline = time.monotonic() + timeout_s
    while open_parts:
        assert time.monotonic() < deadline, f"no EndOfStream on {sorted(open_parts)}"
        for tp, messages in consumer.poll(timeout_ms=500, max_records=5000).items():
            for m in messages:
                event = decode_event(m.value)
                if isinstance(event, EndOfStream):
                    open_parts.discard(tp)
                out[tp.topic].append((tp.partition, m.key, event))
    consumer.close()
    return out


@pytest.mark.broker
def test_replayed_log_reads_back_exactly(broker, tmp_path):
    write(generate(3000, seed=4), tmp_path)
    log = SearchLog(tmp_path / "CriteoSearchData")
    rows = list(log.rows())
    topics = TopicNames()
    create_topics(broker.bootstrap, {t: 3 for t in topics.sources})
    publisher = KafkaPublisher(broker.bootstrap)
    summary = replay(rows, publisher, ReplayConfig(heartbeat_every=6 * 3600))
    publisher.close()
    got = read_until_end(broker.bootstrap, topics.sources)

    def events(topic, cls):
        return [(p, k, e) for p, k, e in got[topic] if isinstance(e, cls)]

    imps, clicks = events("impressions", Impression), events("clicks", Click)
    convs = events("conversions", Conversion)
    ids = sorted(r.impression_id for r in rows)
    sold = sorted(r.impression_id for r in rows if r.sale)
    assert sorted(e.impression_id for _, _, e in imps) == ids
    assert sorted(e.impression_id for _, _, e in clicks) == ids and len(ids) == 3000
    assert sorted(e.impression_id for _, _, e in convs) == sold and len(sold) > 200
    assert summary.counts == {"impressions": 3000, "clicks": 3000, "conversions": len(sold)}
    # Keyed by impression id: an impression's events share a partition.
    partition = {e.impression_id: p for p, _, e in imps}
    for p, key, e in clicks + convs:
        assert key == e.impression_id.encode() and partition[e.impression_id] == p
    click_ts = {e.impression_id: e.ts for _, _, e in clicks}
    assert all(e.ts >= click_ts[e.impression_id] for _, _, e in convs)
    by_id = {r.impression_id: r for r in rows}
    for _, _, e in imps[:50]:
        assert e.features == by_id[e.impression_id].features and e.ts == by_id[e.impression_id].ts
    # Markers on every partition of every topic; within a partition, time never goes back
    # past a heartbeat.
    for topic in topics.sources:
        assert {p for p, _, e in got[topic] if isinstance(e, EndOfStream)} == {0, 1, 2}
        for part in range(3):
            beat = None
            for p, _, e in got[topic]:
                if p != part:
                    continue
                if isinstance(e, Heartbeat):
                    beat = e.ts
                elif beat is not None and not isinstance(e, EndOfStream):
                    assert e.ts >= beat


def test_dead_broker_fails_fast_with_replay_error():
    dead = f"127.0.0.1:{free_port()}"
    config = PublisherConfig(
        bootstrap_timeout_ms=1500, broker_timeout_s=1.5, request_timeout_ms=1500
    )
    started = time.monotonic()
    with pytest.raises(ReplayError, match="broker"):
        publisher = KafkaPublisher(dead, config)
        replay([], publisher, ReplayConfig())
    assert time.monotonic() - started < 10


@pytest.mark.broker
def test_broker_going_away_mid_replay_is_a_replay_error(broker):
    create_topics(broker.bootstrap, {t: 1 for t in TopicNames().sources})
    config = PublisherConfig(broker_timeout_s=1, request_timeout_ms=1000)
    publisher = KafkaPublisher(broker.bootstrap, config)
    publisher.send("impressions", b"{}", key=b"1")
    publisher.flush()
    broker.stop()
    started = time.monotonic()
    with pytest.raises(ReplayError):
        for i in range(2000):
            publisher.send("impressions", b"{}", key=str(i).encode())
        publisher.flush()
    assert time.monotonic() - started < 20
    publisher.close()
