"""`mmn bench join`: events/s through the Faust joiner against a raw consume of the same topics.

In one run, on one embedded broker (or --bootstrap): a synthetic log is replayed at full
speed into fresh source topics; then (a) a plain kafka-python consumer reads all of
those messages; (b) a Faust worker whose agent only counts them (`faust_floor`: the
ceiling of any Faust joiner here) reads them all; (c) the joiner workers label them from
the backlog, from start until every partition's end mini-batch is out. The start-up of
(b) and (c) (process start, group join, table recovery) is measured in the same run on
an empty stream (end markers only) and subtracted. Target: at least 15k input events/s
through the joiner.
"""

from __future__ import annotations

import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from ops.options.bench import BenchOptions
from ops.options.bootstrap import Bootstrap, bootstrap_or_embedded
from ops.options.typed import Entry
from ops.options.values import Count
from simulator.criteo_search import SearchLog
from simulator.kafka_publisher import KafkaPublisher
from simulator.replay import ReplayConfig, ReplaySummary, replay
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig
from streaming.errors import BrokerError
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.processes import stop_processes
from streaming.topics import TopicNames


@dataclass(frozen=True, kw_only=True)
class JoinBench(BenchOptions):
    """Joiner events/s against a raw consume."""

    rows: Count = 50_000
    """clicks in the synthetic log"""
    days: Count = 5
    """days the clicks span (5: ~400 clicks per event hour, so 1h batches are not tiny)"""
    partitions: Count = JoinerConfig.partitions
    """partitions per source topic"""
    workers: Count = 1
    """joiner worker processes"""
    policy: str = LabelConfig.policy
    """label policy"""
    heartbeat_every: Count = 3600
    """event seconds"""
    bootstrap: Bootstrap = None


def _topics(prefix: str) -> TopicNames:
    return TopicNames(**{name: f"bench-{prefix}-{name}" for name in TopicNames().__dict__})


def _replay(bootstrap: str, log: SearchLog | list, topics: TopicNames, heartbeat_every: int):
    publisher = KafkaPublisher(bootstrap)
    try:
        rows = log.rows() if isinstance(log, SearchLog) else log
        return replay(rows, publisher, ReplayConfig(topics=topics, heartbeat_every=heartbeat_every))
    finally:
        publisher.close()


def _messages(summary: ReplaySummary, partitions: int) -> int:
    """Messages a replay wrote: its events, plus heartbeats and an end marker per partition
    of each of the three source topics."""
    return summary.events + 3 * partitions * (summary.heartbeats + 1)


def _raw_consume(bootstrap: str, topics: TopicNames, partitions: int, messages: int) -> float:
    """Seconds a plain consumer takes to read `messages` from the source topics."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in topics.sources for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen, start = 0, time.perf_counter()
    while seen < messages:
        seen += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
    elapsed = time.perf_counter() - start
    consumer.close()
    return elapsed


def _faust_floor(
    bootstrap: str, app_id: str, topics: TopicNames, partitions: int, messages: int
) -> float:
    """Seconds from starting a counting-only Faust worker until it has seen `messages`."""
    command = [sys.executable, "-m", "ops.benches.faust_floor", bootstrap, app_id]
    command += [str(partitions), str(messages), *topics.sources]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = []
    try:
        assert process.stdout is not None
        while time.perf_counter() - start < 600:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if not ready:
                continue
            line = process.stdout.readline().decode(errors="replace")
            if "consumed " in line:  # after any terminal control codes Faust writes
                return time.perf_counter() - start
            if not line:
                break  # the worker exited
            output.append(line)
        raise BrokerError(f"the Faust floor worker did not finish: {''.join(output)[-800:]}")
    finally:
        stop_processes([process], grace_s=10.0)


def _join(config: JoinerConfig, workers: int, log_dir: Path) -> float:
    create_joiner_topics(config)
    start = time.perf_counter()
    with JoinerWorkers(config, log_dir=log_dir).start(workers) as running:
        running.wait_for_end(1800)
        return time.perf_counter() - start


def run(args: JoinBench) -> dict:
    labels = LabelConfig(policy=args.policy)
    with tempfile.TemporaryDirectory() as tmp, bootstrap_or_embedded(args.bootstrap) as bootstrap:
        write(generate(args.rows, seed=1, config=SynthConfig(days=args.days)), Path(tmp))
        log = SearchLog(Path(tmp) / "CriteoSearchData")
        empty, full = _topics("empty"), _topics("full")
        configs = {
            name: JoinerConfig(
                bootstrap=bootstrap,
                app_id=f"bench-join-{name}",
                partitions=args.partitions,
                topics=topics,
                labels=labels,
            )
            for name, topics in (("empty", empty), ("full", full))
        }
        for config in configs.values():
            create_joiner_topics(config)
        empty_summary = _replay(bootstrap, [], empty, args.heartbeat_every)
        summary = _replay(bootstrap, log, full, args.heartbeat_every)
        messages = _messages(summary, args.partitions)
        markers = messages - summary.events
        raw_s = _raw_consume(bootstrap, full, args.partitions, messages)
        floor_startup_s = _faust_floor(
            bootstrap,
            "bench-floor-empty",
            empty,
            args.partitions,
            _messages(empty_summary, args.partitions),
        )
        floor_s = _faust_floor(bootstrap, "bench-floor-full", full, args.partitions, messages)
        startup_s = _join(configs["empty"], args.workers, Path(tmp) / "logs-empty")
        join_s = _join(configs["full"], args.workers, Path(tmp) / "logs-full")
    work_s = max(join_s - startup_s, 1e-9)
    floor_work_s = max(floor_s - floor_startup_s, 1e-9)
    figures = {
        "rows": args.rows,
        "events": summary.events,
        "messages": messages,
        "partitions": args.partitions,
        "workers": args.workers,
        "raw_consume_events_per_s": summary.events / raw_s,
        "faust_floor_events_per_s": summary.events / floor_work_s,
        "joiner_events_per_s": summary.events / work_s,
        "joiner_messages_per_s": messages / work_s,
        "joiner_wall_s": join_s,
        "startup_s": startup_s,
        "ratio": raw_s / work_s,
        "ratio_to_faust_floor": floor_work_s / work_s,
        "target_events_per_s": 15_000,
    }
    _print(figures, markers, floor_startup_s)
    return figures


def _print(figures: dict, markers: int, floor_startup_s: float) -> None:
    print(
        f"{figures['events']:,} events + {markers:,} markers from {figures['rows']:,} clicks, "
        f"{figures['partitions']} partitions, {figures['workers']} worker(s)\n"
        f"raw kafka-python consume: {figures['raw_consume_events_per_s']:>9,.0f} events/s\n"
        f"Faust, agent only counts (start-up {floor_startup_s:.1f}s subtracted): "
        f"{figures['faust_floor_events_per_s']:>9,.0f} events/s\n"
        f"joiner (start-up {figures['startup_s']:.1f}s subtracted): "
        f"{figures['joiner_events_per_s']:>9,.0f} events/s "
        f"({figures['joiner_messages_per_s']:,.0f} msg/s with markers)\n"
        f"ratio joiner / raw: {figures['ratio']:.3f}; joiner / Faust floor: "
        f"{figures['ratio_to_faust_floor']:.3f}; target >= 15,000 events/s"
    )


ENTRIES = {("bench", "join"): Entry("joiner events/s against a raw consume", JoinBench, run)}
