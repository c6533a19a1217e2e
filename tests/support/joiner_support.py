"""The joiner's end-to-end tests' shared parts: a synthetic log, the labels it must give, the
joined topics read back, a replay that injects events mid-log."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from ops.training import delayed
from ops.training.learner import LearnerConfig
from simulator.kafka_publisher import KafkaPublisher
from simulator.records import LogRecord
from simulator.replay import ReplayConfig, replay
from simulator.sources import open_source
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig
from streaming.broker import EmbeddedBroker
from streaming.events import decode_event
from streaming.example import decode_deadletter, decode_example
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.minibatch import decode_minibatch
from streaming.segments import BatchConfig

HOUR, DAY = 3600, 86400


def synthetic_records(tmp: Path, clicks: int, days: int) -> list[LogRecord]:
    write(generate(clicks, seed=7, config=SynthConfig(days=days)), tmp)
    return list(open_source("synthetic", tmp).rows())


def command_labels() -> LabelConfig:
    """The labels `mmn join` applies by default: its method's (mmn train's default method)."""
    return delayed.get(LearnerConfig.method).labels(LabelConfig())


def expected(records: list[LogRecord], labels: LabelConfig) -> set[tuple[str, str, int]]:
    """(impression_id, kind, conversion) computed straight from the log, not by streaming.labels."""
    out = set()
    obs, attr = labels.observation_window_s, labels.attribution_window_s
    for r in records:
        if r.click_ts is None:
            out.add((r.impression_id, "non-click", 0))
            continue
        conv = r.conversion_ts if r.sale and r.conversion_ts is not None else None
        converted = conv is not None and r.click_ts <= conv <= r.click_ts + attr
        if labels.policy == "wait":
            out.add((r.impression_id, "final", int(converted)))
        elif converted and conv <= r.click_ts + obs:
            out.add((r.impression_id, "positive", 1))
        else:
            out.add((r.impression_id, "negative", 0))
            if converted:
                out.add((r.impression_id, "delayed-positive", 1))
    return out


def read_topic(bootstrap: str, topic: str, partitions: int, idle_s: float = 3.0) -> list:
    """Every record of a topic, read until nothing new came for idle_s (end offsets lie on Tansu)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    for tp in tps:  # connected and positioned before the idle clock starts (slow under load)
        consumer.position(tp)
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle_s:
        for records in consumer.poll(timeout_ms=300).values():
            out.extend(records)
            last = time.monotonic()
    consumer.close()
    return out


def join_outputs(bootstrap: str, config: JoinerConfig) -> tuple[list, list, list]:
    names, parts = config.topics, config.partitions
    examples = [decode_example(r.value) for r in read_topic(bootstrap, names.examples, parts)]
    letters = [decode_deadletter(r.value) for r in read_topic(bootstrap, names.deadletter, parts)]
    batches = read_topic(bootstrap, names.minibatches, parts)
    return examples, letters, batches


def replay_log(bootstrap: str, records: list[LogRecord], speed: float | None = None) -> None:
    publisher = KafkaPublisher(bootstrap)
    try:
        replay(records, publisher, ReplayConfig(speed=speed, heartbeat_every=HOUR))
    finally:
        publisher.close()


class InjectingPublisher:
    """The replay's publisher, calling `inject(publisher, ts)` right after its `after`-th
    impression (ts: that impression's time), so that extra events land mid-log in order."""

    def __init__(
        self,
        inner: KafkaPublisher,
        after: int,
        inject: Callable[[KafkaPublisher, int], None],
    ) -> None:
        self.inner, self.left, self.inject = inner, after, inject

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None
    ) -> None:
        self.inner.send(topic, value, key=key, partition=partition)
        if topic == "impressions" and key is not None:
            self.left -= 1
            if self.left == 0:
                self.inject(self.inner, decode_event(value).ts)

    def flush(self) -> None:
        self.inner.flush()

    def partitions(self, topic: str) -> int:
        return self.inner.partitions(topic)


def replay_injecting(
    bootstrap: str,
    records: list[LogRecord],
    *,
    after: int,
    inject: Callable[[KafkaPublisher, int], None],
) -> None:
    """replay_log, with `inject` called after the `after`-th impression (InjectingPublisher)."""
    publisher = KafkaPublisher(bootstrap)
    try:
        replay(
            records,
            InjectingPublisher(publisher, after, inject),
            ReplayConfig(heartbeat_every=HOUR),
        )
    finally:
        publisher.close()


def assert_deduped_equal(examples: list, want: set) -> None:
    """Copies (after a restart) must be exact; after dropping them by (impression_id, kind)
    the outputs are exactly what the log prescribes."""
    by_key: dict = {}
    for ex in examples:
        assert by_key.setdefault(ex.dedupe_key, ex) == ex, f"copy differs: {ex}"
    got = {(e.impression_id, e.kind, e.conversion) for e in by_key.values()}
    missing, extra = sorted(want - got), sorted(got - want)
    assert not missing and not extra, (
        f"{len(examples)} examples read, {len(by_key)} distinct; {len(missing)} missing "
        f"(first: {missing[:5]}), {len(extra)} unexpected (first: {extra[:5]})"
    )


def run_join(
    records: list[LogRecord],
    labels: LabelConfig,
    tmp: Path,
    *,
    partitions: int = 4,
    speed: float | None = None,
    kill_after_rows: int | None = None,
    workers: int = 1,
) -> tuple[list, list]:
    """A fresh broker; join concurrently with the replay; optionally SIGKILL and restart."""
    with EmbeddedBroker() as broker:
        config = JoinerConfig(bootstrap=broker.bootstrap, partitions=partitions, labels=labels)
        create_joiner_topics(config)
        with JoinerWorkers(config, log_dir=tmp / "logs").start(workers) as running:
            replay_log(broker.bootstrap, records, speed)
            if kill_after_rows is not None:
                seen = wait_for_rows(broker.bootstrap, config, kill_after_rows)
                running.kill(0)
                assert seen < 2 * kill_after_rows  # killed mid-stream, far from the end
            running.wait_for_end(900)  # the supervisor restarts the killed worker
            assert running.restarts == (0 if kill_after_rows is None else 1)
        examples, _, batches = join_outputs(broker.bootstrap, config)
    return examples, [r.value for r in batches]


def wait_for_rows(bootstrap: str, config: JoinerConfig, rows: int) -> int:
    """Block until `examples` holds at least `rows` messages; how many it held then."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(config.topics.examples, p) for p in range(config.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen, deadline = 0, time.monotonic() + 600
    while seen < rows and time.monotonic() < deadline:
        seen += sum(len(v) for v in consumer.poll(timeout_ms=300).values())
    consumer.close()
    return seen


def cli_log(tmp: Path, rows: int) -> list[LogRecord]:
    """The log `mmn data synth --rows ROWS` writes (its defaults: seed 0, SynthConfig())."""
    write(generate(rows, seed=0, config=SynthConfig()), tmp)
    return list(open_source("synthetic", tmp).rows())


def minibatch_rows(batches: list) -> Counter:
    """(impression_id, kind) of every row of every mini-batch message, copies included."""
    return Counter(
        (i, k)
        for r in batches
        for b in [decode_minibatch(r.value)]
        for i, k in zip(b.impression_ids, b.kinds, strict=True)
    )


def small_join_config(bootstrap: str) -> JoinerConfig:
    """Two partitions, a 1 h observation and 30 d attribution window, mini-batches of 256 rows
    or one day; its topics created."""
    labels = LabelConfig(observation_window_s=HOUR, attribution_window_s=30 * DAY)
    config = JoinerConfig(
        bootstrap=bootstrap,
        partitions=2,
        labels=labels,
        batches=BatchConfig(batch_size=256, max_span_s=DAY),
    )
    create_joiner_topics(config)
    return config
