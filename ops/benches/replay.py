"""`mmn bench replay`: the replay's publish rate against raw kafka-python on the same messages.

In one run, into one embedded broker (or --bootstrap): (a) a plain KafkaProducer loop
sends the replay's own messages, pre-encoded (events and markers, in replay order, with
the replay publisher's producer settings); (b) the replay reads the log and publishes it
at full speed. The two alternate for `--rounds` rounds on fresh topics and the best round
of each counts (the machine may be shared). The ratio (b)/(a) is what the replay's
reading, ordering and encoding cost; the target is >= 0.7.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from ops.options.bench import BenchOptions
from ops.options.bootstrap import Bootstrap, bootstrap_or_embedded
from ops.options.typed import Entry
from ops.options.values import Count
from simulator.criteo_search import SearchLog
from simulator.kafka_publisher import KafkaPublisher, PublisherConfig
from simulator.replay import ReplayConfig, replay
from simulator.synth import generate, write
from streaming.joiner_app import JoinerConfig
from streaming.topics import TopicNames, create_topics


class _Recorder:
    """A publisher that keeps every message, to replay them raw."""

    def __init__(self, partitions: int) -> None:
        self.messages: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.n = partitions

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None
    ) -> None:
        self.messages.append((topic, value, key, partition))

    def flush(self) -> None:
        pass

    def partitions(self, topic: str) -> int:
        return self.n


@dataclass(frozen=True, kw_only=True)
class ReplayBench(BenchOptions):
    """Replay events/s against raw kafka-python."""

    rows: Count = 50_000
    """rows of the synthetic log"""
    partitions: Count = JoinerConfig.partitions
    """partitions per source topic"""
    rounds: Count = 3
    """alternating rounds of each"""
    heartbeat_every: Count = 3600
    """event seconds between heartbeats (3600: markers stay a minority of a small log's)"""
    bootstrap: Bootstrap = None


def _topics(prefix: str) -> TopicNames:
    return TopicNames(
        impressions=f"bench-{prefix}-impressions",
        clicks=f"bench-{prefix}-clicks",
        conversions=f"bench-{prefix}-conversions",
    )


def run(args: ReplayBench) -> dict:
    raw_s: list[float] = []
    replay_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        write(generate(args.rows, seed=1), Path(tmp))
        log = SearchLog(Path(tmp) / "CriteoSearchData")
        recorder = _Recorder(args.partitions)
        replay(log.rows(), recorder, ReplayConfig(heartbeat_every=args.heartbeat_every))
        with bootstrap_or_embedded(args.bootstrap) as bootstrap:
            # Alternate the two on fresh topics, so a burst of load elsewhere on the
            # machine hits both alike; the best round of each is compared.
            for round_no in range(args.rounds):
                raw_topics, replay_topics = _topics(f"raw{round_no}"), _topics(f"replay{round_no}")
                create_topics(
                    bootstrap,
                    {t: args.partitions for t in (*raw_topics.sources, *replay_topics.sources)},
                )
                rename = dict(zip(TopicNames().sources, raw_topics.sources, strict=True))
                renamed = [(rename[t], v, k, p) for t, v, k, p in recorder.messages]
                raw_s.append(_raw_produce(bootstrap, renamed))
                publisher = KafkaPublisher(bootstrap)
                config = ReplayConfig(topics=replay_topics, heartbeat_every=args.heartbeat_every)
                summary = replay(log.rows(), publisher, config)
                publisher.close()
                replay_s.append(summary.wall_s)
    messages = len(recorder.messages)
    best_raw, best_replay = min(raw_s), min(replay_s)
    figures: dict[str, Any] = {
        "rows": args.rows,
        "messages": messages,
        "events": summary.events,
        "rounds": args.rounds,
        "raw_produce_msgs_per_s": messages / best_raw,
        "replay_msgs_per_s": messages / best_replay,
        "replay_events_per_s": summary.events / best_replay,
        "ratio": best_raw / best_replay,
        "ratio_per_round": [r / p for r, p in zip(raw_s, replay_s, strict=True)],
    }
    print(
        f"{messages:,} messages ({summary.events:,} events + markers) from {args.rows:,} rows, "
        f"best of {args.rounds} alternating rounds\n"
        f"raw kafka-python produce: {figures['raw_produce_msgs_per_s']:>9,.0f} msg/s\n"
        f"replay (max speed):       {figures['replay_msgs_per_s']:>9,.0f} msg/s "
        f"({figures['replay_events_per_s']:,.0f} events/s without markers)\n"
        f"ratio replay / raw:       {figures['ratio']:.2f} (target >= 0.7; per round "
        + ", ".join(f"{r:.2f}" for r in figures["ratio_per_round"])
        + ")"
    )
    return figures


def _raw_produce(
    bootstrap: str, messages: list[tuple[str, bytes, bytes | None, int | None]]
) -> float:
    """Seconds a plain producer loop takes to send and flush the messages."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PublisherConfig().producer_settings())
    started = time.perf_counter()
    for topic, value, key, partition in messages:
        producer.send(topic, value=value, key=key, partition=partition)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


ENTRIES = {("bench", "replay"): Entry("replay events/s against raw kafka-python", ReplayBench, run)}
