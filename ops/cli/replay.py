"""`mmn replay`: publish a conversion log to Kafka as a live stream in event-time order."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ops.options.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.options.configs import add_options, at_least, build, class_default
from simulator.errors import ReplayError
from simulator.kafka_publisher import KafkaPublisher, PublisherConfig
from simulator.records import LogSource
from simulator.replay import ReplayConfig, ReplayProgress, ReplaySummary, replay
from simulator.sources import SOURCES, open_source
from streaming.broker import is_embedded
from streaming.broker_memory import MemoryCheck, available_bytes
from streaming.health import BrokerWatch
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
        type=at_least(1),
        default=class_default(JoinerConfig, "partitions"),
        help="partitions per source topic (the joiner's --partitions must match)",
    )
    parser.add_argument("--type-field", default=None, help="column of the conversion type")
    parser.add_argument("--scenario-field", default=None, help="column of the display scenario")
    pace = add_options(parser.add_argument_group("pace and window"), ReplayConfig, skip=("topics",))
    for name in ("impressions", "clicks", "conversions"):
        parser.add_argument(f"--{name}-topic", default=name, help=f"topic of the {name}")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    publishing = add_options(parser, PublisherConfig, only=("broker_timeout_s",))
    parser.set_defaults(func=run, options=(pace, publishing))


# Events each record of a log makes at least: its impression, and on every line of a search
# log its click (conversions come on top).
LEAST_EVENTS_PER_RECORD = {"criteo-search": 2, "synthetic": 2}


def refuse_what_cannot_fit(
    args: argparse.Namespace, source: LogSource, bootstrap: str, *, timeout_s: float
) -> None:
    """Refuse a whole-log replay into an embedded broker that would not hold it (one line).

    The embedded broker keeps every event in memory (streaming.broker_memory); a replay of a
    window (--start-day, --days) is not estimated.
    """
    if args.start_day or args.days is not None or not is_embedded(bootstrap, timeout_s):
        return
    events = len(source) * LEAST_EVENTS_PER_RECORD.get(args.source, 1)
    check = MemoryCheck(events=events, available=available_bytes())
    if not check.fits:
        raise ReplayError(f"{args.data}: {check.refusal()}")


def topic_names(args: argparse.Namespace) -> TopicNames:
    return TopicNames(
        impressions=args.impressions_topic,
        clicks=args.clicks_topic,
        conversions=args.conversions_topic,
    )


def replay_to(
    bootstrap: str,
    source: LogSource,
    config: ReplayConfig,
    partitions: int,
    *,
    quiet: bool,
    publishing: PublisherConfig | None = None,
) -> ReplaySummary:
    """Create the source topics and replay `source` into them; the summary of what went out.

    A broker outage is reported on stderr as it starts and ends; the replay waits for the
    broker up to `publishing.broker_timeout_s`, then fails with a ReplayError.
    """
    publishing = publishing or PublisherConfig()
    watch = BrokerWatch(
        bootstrap,
        timeout_s=publishing.broker_timeout_s,
        on_change=lambda line: print(f"\nreplay: {line}", file=sys.stderr, flush=True),
    ).start()
    try:
        # Before the topics: it fails within its bounded timeout on a dead broker.
        publisher = KafkaPublisher(bootstrap, publishing, health=watch)
    except BaseException:
        watch.close()
        raise
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
        watch.close()
        publisher.close()


def run(args: argparse.Namespace) -> int:
    source = open_source(
        args.source, args.data, type_field=args.type_field, scenario_field=args.scenario_field
    )
    pace, publishing = args.options
    config = build(args, pace, topics=topic_names(args))
    publishing_config = build(args, publishing)  # its bad values exit 2 before any connection
    if args.max_speed:
        config = dataclasses.replace(config, speed=None)
    print(
        f"{args.data}: {len(source):,} impressions, {len(source.types)} conversion types, "
        f"{len(source.scenarios)} display scenarios"
    )
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        refuse_what_cannot_fit(
            args, source, bootstrap, timeout_s=publishing_config.broker_timeout_s
        )
        summary = replay_to(
            bootstrap,
            source,
            config,
            args.partitions,
            quiet=args.quiet,
            publishing=publishing_config,
        )
    if summary.records == 0:
        window = f"--start-day {args.start_day:g}" + (f" --days {args.days:g}" if args.days else "")
        raise ReplayError(
            f"replayed 0 events into {bootstrap}: {args.data} has no impression in the window "
            f"{window} (only end-of-stream markers were sent)"
        )
    print(f"replayed into {bootstrap}:")
    print("\n".join(summary.lines()))
    return 0
