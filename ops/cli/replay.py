"""`mmn replay`: publish a conversion log to Kafka as a live stream in event-time order."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ops.options.bootstrap import Bootstrap, bootstrap_or_embedded
from ops.options.typed import Entry, offered
from ops.options.values import Count, one_of
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

Pace = offered(ReplayConfig, skip=("topics",))
Publishing = offered(PublisherConfig, only=("broker_timeout_s",))


@dataclass(frozen=True, kw_only=True)
class ReplayCommand:
    """Replay a conversion log as impressions, clicks and conversions."""

    data: Annotated[Path, tyro.conf.arg(metavar="FILE")]
    """the log"""
    source: Annotated[str, one_of(SOURCES)] = "criteo-search"
    """log format"""
    bootstrap: Bootstrap = None
    max_speed: bool = False
    """no pacing, whatever --speed says"""
    partitions: Count = JoinerConfig.partitions
    """partitions per source topic (the joiner's --partitions must match)"""
    type_field: str | None = None
    """column of the conversion type"""
    scenario_field: str | None = None
    """column of the display scenario"""
    pace: Annotated[ReplayConfig, Pace]
    impressions_topic: str = "impressions"
    """topic of the impressions"""
    clicks_topic: str = "clicks"
    """topic of the clicks"""
    conversions_topic: str = "conversions"
    """topic of the conversions"""
    quiet: bool = False
    """no progress line"""
    publishing: Annotated[PublisherConfig, Publishing]


# Events each record of a log makes at least: its impression, and on every line of a search
# log its click (conversions come on top).
LEAST_EVENTS_PER_RECORD = {"criteo-search": 2, "synthetic": 2}


def refuse_what_cannot_fit(
    args: ReplayCommand, source: LogSource, bootstrap: str, *, timeout_s: float
) -> None:
    """Refuse a whole-log replay into an embedded broker that would not hold it (one line).

    The embedded broker keeps every event in memory (streaming.broker_memory); a replay of a
    window (--start-day, --days) is not estimated.
    """
    pace: ReplayConfig = args.pace
    if pace.start_day or pace.days is not None or not is_embedded(bootstrap, timeout_s):
        return
    events = len(source) * LEAST_EVENTS_PER_RECORD.get(args.source, 1)
    check = MemoryCheck(events=events, available=available_bytes())
    if not check.fits:
        raise ReplayError(f"{args.data}: {check.refusal()}")


def topic_names(args: ReplayCommand) -> TopicNames:
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


def run(args: ReplayCommand) -> int:
    source = open_source(
        args.source, args.data, type_field=args.type_field, scenario_field=args.scenario_field
    )
    config = dataclasses.replace(args.pace, topics=topic_names(args))
    publishing_config: PublisherConfig = args.publishing
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
        window = f"--start-day {config.start_day:g}" + (
            f" --days {config.days:g}" if config.days else ""
        )
        raise ReplayError(
            f"replayed 0 events into {bootstrap}: {args.data} has no impression in the window "
            f"{window} (only end-of-stream markers were sent)"
        )
    print(f"replayed into {bootstrap}:")
    print("\n".join(summary.lines()))
    return 0


ENTRIES = {
    ("replay",): Entry(
        "replay a conversion log as impressions, clicks and conversions", ReplayCommand, run
    )
}
