"""`mmn bench replay`: the replay's publish rate against raw kafka-python on the same messages.

In one run, into one embedded broker (or --bootstrap): (a) a plain KafkaProducer loop
sends the replay's own messages, pre-encoded (events and markers, in replay order, with
the replay publisher's producer settings); (b) the replay reads the log and publishes it
at full speed. The ratio (b)/(a) is what the replay's reading, ordering and encoding cost;
the target is >= 0.7.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer

from ops.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from simulator.criteo_search import SearchLog
from simulator.kafka_publisher import KafkaPublisher, PublisherConfig
from simulator.replay import ReplayConfig, replay
from simulator.synth import generate, write
from streaming.topics import TopicNames, create_topics


class _Recorder:
    """A publisher that keeps every message, to replay them raw."""

    def __init__(self, partitions: int) -> None:
        self.messages: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.n = partitions

    def send(self, topic, value, *, key=None, partition=None):
        self.messages.append((topic, value, key, partition))

    def flush(self):
        pass

    def partitions(self, topic):
        return self.n


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="replay events/s against raw kafka-python")
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the synthetic log")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per source topic")
    parser.add_argument(
        "--heartbeat-every",
        type=int,
        default=3600,
        help="event seconds between heartbeats (3600 on a small synthetic log: markers stay a minority of the messages)",
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=run)


def _topics(prefix: str) -> TopicNames:
    return TopicNames(
        impressions=f"{prefix}-impressions",
        clicks=f"{prefix}-clicks",
        conversions=f"{prefix}-conversions",
    )


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        write(generate(args.rows, seed=1), Path(tmp))
        log = SearchLog(Path(tmp) / "CriteoSearchData")
        with bootstrap_or_embedded(args.bootstrap) as bootstrap:
            raw_topics, replay_topics = _topics("bench-raw"), _topics("bench-replay")
            create_topics(
                bootstrap,
                {t: args.partitions for t in (*raw_topics.sources, *replay_topics.sources)},
            )
            recorder = _Recorder(args.partitions)
            replay(
                log.rows(),
                recorder,
                ReplayConfig(topics=raw_topics, heartbeat_every=args.heartbeat_every),
            )
            raw_s = _raw_produce(bootstrap, recorder.messages)
            publisher = KafkaPublisher(bootstrap)
            config = ReplayConfig(topics=replay_topics, heartbeat_every=args.heartbeat_every)
            summary = replay(log.rows(), publisher, config)
            publisher.close()
    messages = len(recorder.messages)
    figures = {
        "rows": args.rows,
        "messages": messages,
        "events": summary.events,
        "raw_produce_msgs_per_s": messages / raw_s,
        "replay_msgs_per_s": messages / summary.wall_s,
        "replay_events_per_s": summary.events_per_s,
        "ratio": raw_s / summary.wall_s,
    }
    print(
        f"{messages:,} messages ({summary.events:,} events + markers) from {args.rows:,} rows\n"
        f"raw kafka-python produce: {figures['raw_produce_msgs_per_s']:>9,.0f} msg/s\n"
        f"replay (max speed):       {figures['replay_msgs_per_s']:>9,.0f} msg/s "
        f"({figures['replay_events_per_s']:,.0f} events/s without markers)\n"
        f"ratio replay / raw:       {figures['ratio']:.2f} (target >= 0.7)"
    )
    return figures


def _raw_produce(
    bootstrap: str, messages: list[tuple[str, bytes, bytes | None, int | None]]
) -> float:
    """Seconds a plain producer loop takes to send and flush the messages."""
    c = PublisherConfig()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=c.acks,
        linger_ms=c.linger_ms,
        batch_size=c.batch_size,
        max_block_ms=c.max_block_ms,
        request_timeout_ms=c.request_timeout_ms,
    )
    started = time.perf_counter()
    for topic, value, key, partition in messages:
        producer.send(topic, value=value, key=key, partition=partition)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed
