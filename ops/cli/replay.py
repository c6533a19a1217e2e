"""`mmn replay`: publish a conversion log to Kafka as a live stream in event-time order."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.options import add_options, build, class_default
from simulator.kafka_publisher import KafkaPublisher
from simulator.records import LogSource
from simulator.replay import ReplayConfig, ReplayProgress, ReplaySummary, replay
from simulator.sources import SOURCES, open_source
from streaming.joiner_app import JoinerConfig
from streaming.progress import LogProgress, TerminalProgress
from streaming.topics import TopicNames, create_topics


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="replay a conversion log as impressions, clicks and conversions"
    )
    parser.add_argument("--data", type=Path, required=True, metavar="FILE", help="the log")
    parser.add_argument("--source", choices=SOURCES, default="criteo-search", help="log format")
    add_bootstrap_argument(parser)
    parser.add_argument("--max-speed", action="store_true", help="no pacing, whatever --speed says")
    parser.add_argument(
        "--partitions",
        type=int,
        default=class_default(JoinerConfig, "partitions"),
        help="partitions per source topic (the joiner's --partitions must match)",
    )
    parser.add_argument("--type-field", default=None, help="column of the conversion type")
    parser.add_argument("--scenario-field", default=None, help="column of the display scenario")
    pace = add_options(parser.add_argument_group("pace and window"), ReplayConfig, skip=("topics",))
    for name in ("impressions", "clicks", "conversions"):
        parser.add_argument(f"--{name}-topic", default=name, help=f"topic of the {name}")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run, options=pace)


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
        progress: ReplayProgress | None = None
        if not quiet:
            # Off a terminal (a log file), lines that others can read.
            progress = (
                TerminalProgress(sys.stderr, unit="events")
                if sys.stderr.isatty()
                else LogProgress(sys.stderr, unit="events")
            )
        return replay(source.rows(), publisher, config, progress=progress)
    finally:
        publisher.close()


def run(args: argparse.Namespace) -> int:
    source = open_source(
        args.source, args.data, type_field=args.type_field, scenario_field=args.scenario_field
    )
    config = build(args, args.options, topics=topic_names(args))
    if args.max_speed:
        config = dataclasses.replace(config, speed=None)
    print(
        f"{args.data}: {len(source):,} impressions, {len(source.types)} conversion types, "
        f"{len(source.scenarios)} display scenarios"
    )
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        summary = replay_to(bootstrap, source, config, args.partitions, quiet=args.quiet)
    print(f"replayed into {bootstrap}:")
    print("\n".join(summary.lines()))
    return 0
