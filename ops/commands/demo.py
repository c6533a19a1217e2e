"""`mmn demo`: the end-to-end demo on a synthetic log with the embedded broker.

The demo is a list of steps over one shared context, run in order and timed; later
stages of the project add steps (join, train, evaluate) to `STEPS`.

Today: synthesise a log, replay it into the broker at full speed, read every source
topic back until its end markers, and check the counts against the file.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ops.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.commands.replay import replay_to
from ops.errors import OpsError
from simulator.criteo_search import SearchLog
from simulator.replay import ReplayConfig, ReplaySummary
from simulator.synth import generate, write
from streaming.events import EndOfStream, Heartbeat, decode_event
from streaming.topics import TopicNames


class DemoError(OpsError):
    """A demo step found the pipeline's output different from what it expected."""


@dataclass(kw_only=True)
class DemoContext:
    """What the steps share: settings, then what each step produced."""

    out: Path
    rows: int
    seed: int
    bootstrap: str = ""
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 4
    log: SearchLog | None = None
    summary: ReplaySummary | None = None


def step_synthesise(ctx: DemoContext) -> str:
    write(generate(ctx.rows, seed=ctx.seed), ctx.out)
    ctx.log = SearchLog(ctx.out / "CriteoSearchData")
    return f"{ctx.rows:,} rows in {ctx.out}"


def step_replay(ctx: DemoContext) -> str:
    assert ctx.log is not None
    config = ReplayConfig(topics=ctx.topics, heartbeat_every=3600)
    ctx.summary = replay_to(ctx.bootstrap, ctx.log, config, ctx.partitions, quiet=True)
    return f"{ctx.summary.events:,} events at {ctx.summary.events_per_s:,.0f} events/s"


def read_counts(bootstrap: str, topics: tuple[str, ...], timeout_s: float = 60.0) -> dict[str, int]:
    """Events per topic (markers excluded), read until every partition's EndOfStream."""
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        waiting, counts = set(parts), dict.fromkeys(topics, 0)
        deadline = time.monotonic() + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise DemoError(
                    f"no end-of-stream marker within {timeout_s:.0f}s on {sorted(waiting)}"
                )
            for tp, messages in consumer.poll(timeout_ms=500, max_records=10_000).items():
                for message in messages:
                    event = decode_event(message.value)
                    if isinstance(event, EndOfStream):
                        waiting.discard(tp)
                    elif not isinstance(event, Heartbeat):
                        counts[tp.topic] += 1
        consumer.close()
    except KafkaError as exc:
        raise DemoError(f"reading the topics back from {bootstrap} failed: {exc!r}") from exc
    return counts


def step_read_back(ctx: DemoContext) -> str:
    assert ctx.log is not None
    counts = read_counts(ctx.bootstrap, ctx.topics.sources)
    sales = sum(r.sale for r in ctx.log.rows())
    expected = {
        ctx.topics.impressions: len(ctx.log),
        ctx.topics.clicks: len(ctx.log),
        ctx.topics.conversions: sales,
    }
    for topic, n in counts.items():
        print(f"      {topic:>12}: {n:>8,} read back, {expected[topic]:>8,} in the file")
    if counts != expected:
        raise DemoError(f"topics hold {counts}, the file gives {expected}")
    return "every topic matches the file"


STEPS: tuple[tuple[str, Callable[[DemoContext], str]], ...] = (
    ("synthesise a log", step_synthesise),
    ("replay it into the broker", step_replay),
    ("read every topic back", step_read_back),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the end-to-end demo on a synthetic log")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic log")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic log")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="working folder")
    add_bootstrap_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = DemoContext(out=args.out, rows=args.rows, seed=args.seed)
    started = time.perf_counter()
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        ctx.bootstrap = bootstrap
        print(f"broker at {bootstrap}")
        for i, (title, step) in enumerate(STEPS, start=1):
            step_started = time.perf_counter()
            print(f"[{i}/{len(STEPS)}] {title} ...", flush=True)
            result = step(ctx)
            print(f"      {result} ({time.perf_counter() - step_started:.1f}s)", flush=True)
    print(f"demo finished in {time.perf_counter() - started:.1f}s")
    return 0
