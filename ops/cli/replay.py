"""`mmn replay`: publish a conversion log to Kafka as a live stream in event-time order."""

from __future__ import annotations

import argparse
from pathlib import Path

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from simulator.kafka_publisher import KafkaPublisher
from simulator.records import LogSource
from simulator.replay import Progress, ReplayConfig, ReplaySummary, replay
from simulator.sources import SOURCES, open_source
from streaming.topics import TopicNames, create_topics


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay a conversion log as impressions, clicks and conversions"
    )
    parser.add_argument("--data", type=Path, required=True, metavar="FILE", help="the log")
    parser.add_argument("--source", choices=SOURCES, default="criteo-search", help="log format")
    add_bootstrap_argument(parser)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=float, default=None, help="event seconds per wall second (e.g. 3600)"
    )
    pace.add_argument("--max-speed", action="store_true", help="no pacing (the default)")
    parser.add_argument("--start-day", type=float, default=0.0, help="skip this many days")
    parser.add_argument("--days", type=float, default=None, help="replay this many days")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per source topic")
    parser.add_argument("--type-field", default=None, help="column of the conversion type")
    parser.add_argument("--scenario-field", default=None, help="column of the display scenario")
    parser.add_argument("--heartbeat-every", type=int, default=60, help="event seconds")
    for name in ("impressions", "clicks", "conversions"):
        parser.add_argument(f"--{name}-topic", default=name, help=f"topic of the {name}")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run)


def topic_names(args: argparse.Namespace) -> TopicNames:
    return TopicNames(
        impressions=args.impressions_topic,
        clicks=args.clicks_topic,
        conversions=args.conversions_topic,
    )


def replay_to(
    bootstrap: str, source: LogSource, config: ReplayConfig, partitions: int, *, quiet: bool
) -> ReplaySummary:
    """Create the source topics and replay `source` into them; the summary of what went out."""
    # The publisher first: it fails within its bounded timeout on a dead broker.
    publisher = KafkaPublisher(bootstrap)
    try:
        create_topics(bootstrap, {topic: partitions for topic in config.topics.sources})
        return replay(
            source.rows(), publisher, config, progress=None if quiet else Progress(log_every_s=2.0)
        )
    finally:
        publisher.close()


def run(args: argparse.Namespace) -> int:
    source = open_source(
        args.source, args.data, type_field=args.type_field, scenario_field=args.scenario_field
    )
    config = ReplayConfig(
        topics=topic_names(args),
        speed=None if args.max_speed else args.speed,
        start_day=args.start_day,
        days=args.days,
        heartbeat_every=args.heartbeat_every,
    )
    print(
        f"{args.data}: {len(source):,} impressions, {len(source.types)} conversion types, "
        f"{len(source.scenarios)} display scenarios"
    )
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        summary = replay_to(bootstrap, source, config, args.partitions, quiet=args.quiet)
    print(f"replayed into {bootstrap}:")
    print("\n".join(summary.lines()))
    return 0
