"""End to end against the embedded broker: replay a synthetic log, join, read the outputs back."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ops.cli.options import class_default
from ops.training import delayed
from ops.training.learner import LearnerConfig
from simulator.kafka_publisher import KafkaPublisher
from simulator.records import LogRecord
from simulator.replay import ReplayConfig, replay
from simulator.sources import open_source
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig
from streaming.broker import EmbeddedBroker
from streaming.events import Click, Conversion, Impression, decode_event, encode_event
from streaming.example import decode_deadletter, decode_example
from streaming.joiner_app import ChangelogStore, JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.minibatch import decode_minibatch
from streaming.partition_joiner import meta_key
from streaming.segments import BatchConfig

HOUR, DAY = 3600, 86400


def synthetic_records(tmp: Path, clicks: int, days: int) -> list[LogRecord]:
    write(generate(clicks, seed=7, config=SynthConfig(days=days)), tmp)
    return list(open_source("synthetic", tmp).rows())


def command_labels() -> LabelConfig:
    """The labels `mmn join` applies by default: its method's (mmn train's default method)."""
    return delayed.get(class_default(LearnerConfig, "method")).labels(LabelConfig())


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
    assert {(e.impression_id, e.kind, e.conversion) for e in by_key.values()} == want


def test_changelog_store_never_sends_progress_or_deletes_before_what_they_vouch_for() -> None:
    sent: list[tuple[str, bytes | None]] = []
    deliveries: list[asyncio.Future] = []
    after_delivery: list[bool] = []  # per send: was everything sent before it delivered?

    async def send(topic: str, partition: int, key: bytes, value: bytes | None) -> asyncio.Future:
        assert (topic, partition) == ("app-pending-changelog", 3)
        after_delivery.append(all(d.done() for d in deliveries))
        sent.append((json.loads(key), value and json.loads(value)))
        delivery = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(delivery.set_result, None)
        deliveries.append(delivery)
        return delivery

    table = SimpleNamespace(
        data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: "app-pending-changelog")
    )
    store = ChangelogStore(table, 3, send)
    store["a"] = {"io": 1}
    store[meta_key(3)] = {"o": 1}
    store["b"] = {"io": 2}
    store["a"] = {"io": 1, "ko": 1}  # keeps its place: the fact carries its own offset
    del store["b"]
    store[meta_key(3)] = {"o": 2}  # moves after everything it vouches for
    asyncio.run(store.flush())
    assert sent == [("a", {"io": 1, "ko": 1}), ("b", None), (meta_key(3), {"o": 2})]
    # The last write goes alone, in a record batch of its own (see ChangelogStore.flush).
    assert after_delivery == [True, False, True]
    assert table.data == {"a": {"io": 1, "ko": 1}, meta_key(3): {"o": 2}}


@pytest.mark.broker
def test_small_log_joins_exactly_with_dead_letters_counted(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    labels = LabelConfig(observation_window_s=HOUR, attribution_window_s=30 * DAY)
    config = JoinerConfig(
        bootstrap=broker.bootstrap,
        partitions=2,
        labels=labels,
        batches=BatchConfig(batch_size=256, max_span_s=DAY),
    )
    create_joiner_topics(config)
    records = synthetic_records(tmp_path / "log", clicks=1500, days=3)
    first = records[0].ts
    # Before the replay, at the log's first event time (so nothing after it is late):
    # two non-clicked impressions, an orphan click, two orphan conversions, a duplicate of
    # the log's first impression (the replay's copy is then the duplicate), two malformed.
    extra = [
        Impression(
            impression_id=f"nc{i}",
            user_id="x",
            ts=first,
            conv_type="t",
            scenario="s",
            features={"a": "1"},
        )
        for i in range(2)
    ]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for imp in extra:
        producer.send("impressions", encode_event(imp), key=imp.impression_id.encode())
    producer.send(
        "clicks", encode_event(Click(impression_id="oc", user_id="x", ts=first)), key=b"oc"
    )
    for name in ("ov1", "ov2"):
        producer.send(
            "conversions",
            encode_event(Conversion(impression_id=name, user_id="x", ts=first)),
            key=name.encode(),
        )
    r0 = records[0]
    dup = Impression(
        impression_id=r0.impression_id,
        user_id=r0.user_id,
        ts=r0.ts,
        conv_type=r0.conv_type,
        scenario=r0.scenario,
        features=r0.features,
    )
    producer.send("impressions", encode_event(dup), key=r0.impression_id.encode())
    producer.send("clicks", b"\xff not json", partition=0)
    producer.send("conversions", b'{"v": 1, "event": "conversion"}', partition=1)
    producer.flush()
    producer.close()
    replay_log(broker.bootstrap, records)

    with JoinerWorkers(config, log_dir=tmp_path / "logs").start(1) as workers:
        watcher = workers.wait_for_end(240)
    assert not any(b"\x1b" in p.read_bytes() for p in (tmp_path / "logs").glob("*.log"))
    examples, letters, batches = join_outputs(broker.bootstrap, config)

    want = expected(records, labels) | {(f"nc{i}", "non-click", 0) for i in range(2)}
    assert_deduped_equal(examples, want)
    assert len(examples) == len(want)  # no restart: no copies either
    assert Counter(d.reason for d in letters) == {
        "orphan-click": 1,
        "orphan-conversion": 2,
        "duplicate-impression": 1,
        "malformed": 2,
    }
    assert {d.value for d in letters if d.reason == "malformed"} == {
        b"\xff not json",
        b'{"v": 1, "event": "conversion"}',
    }
    decoded = [decode_minibatch(r.value) for r in batches]
    assert sum(len(b) for b in decoded) == len(examples) == watcher.rows
    assert all(len(b) <= 256 for b in decoded)
    assert len({b.conv_types[i] for b in decoded for i in range(len(b))}) > 1  # mixed domains
    for p in range(config.partitions):
        mine = [b for b in decoded if b.partition == p]
        assert [b.seq for b in mine] == list(range(len(mine)))
        assert [b.end for b in mine] == [False] * (len(mine) - 1) + [True]
        label_ts = [t for b in mine for t in b.label_ts.tolist()]
        assert label_ts == sorted(label_ts)  # decision order within a partition


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


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> list[LogRecord]:
    return synthetic_records(tmp_path_factory.mktemp("big"), clicks=50_000, days=20)


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.parametrize("policy", ["fake-negative", "wait"])
def test_fifty_thousand_clicks_join_exactly_for_each_policy(
    big_log: list[LogRecord], policy: str, tmp_path: Path
) -> None:
    labels = LabelConfig(policy=policy)
    examples, _ = run_join(big_log, labels, tmp_path)
    assert_deduped_equal(examples, expected(big_log, labels))
    assert len(examples) == len({e.dedupe_key for e in examples})


@pytest.mark.slow
@pytest.mark.broker
def test_two_workers_share_the_partitions_and_join_exactly(
    big_log: list[LogRecord], tmp_path: Path
) -> None:
    labels = LabelConfig()
    examples, _ = run_join(big_log, labels, tmp_path, workers=2)
    assert_deduped_equal(examples, expected(big_log, labels))


@pytest.mark.slow
@pytest.mark.broker
def test_one_partition_output_is_identical_at_two_replay_speeds(
    big_log: list[LogRecord], tmp_path: Path
) -> None:
    labels = LabelConfig()
    span = big_log[-1].ts - big_log[0].ts
    fast, fast_batches = run_join(big_log, labels, tmp_path / "fast", partitions=1)
    slow, slow_batches = run_join(big_log, labels, tmp_path / "slow", partitions=1, speed=span / 40)
    assert_deduped_equal(fast, expected(big_log, labels))
    assert fast == slow
    assert fast_batches == slow_batches  # byte-identical mini-batches


@pytest.mark.slow
@pytest.mark.broker
def test_sigkill_mid_stream_and_restart_repeats_only_exact_copies(
    big_log: list[LogRecord], tmp_path: Path
) -> None:
    labels = LabelConfig()
    want = expected(big_log, labels)
    examples, batches = run_join(big_log, labels, tmp_path, kill_after_rows=len(want) // 3)
    assert_deduped_equal(examples, want)
    decoded: dict = {}
    for value in batches:
        batch = decode_minibatch(value)
        assert decoded.setdefault(batch.dedupe_key, value) == value  # copies are byte-identical
    rows = {
        (i, k)
        for v in decoded.values()
        for b in [decode_minibatch(v)]
        for i, k in zip(b.impression_ids, b.kinds, strict=True)
    }
    assert rows == {(i, k) for i, k, _ in want}


@pytest.mark.slow
@pytest.mark.broker
def test_poisoned_timestamps_and_a_tombstone_are_dead_letters_and_poison_nothing(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Finding 1 and 2 of issue 11: one event in milliseconds stopped the pipeline for good."""
    labels = LabelConfig(observation_window_s=HOUR, attribution_window_s=30 * DAY)
    config = JoinerConfig(bootstrap=broker.bootstrap, partitions=2, labels=labels)
    create_joiner_topics(config)
    records = synthetic_records(tmp_path / "log", clicks=1500, days=3)
    first = records[0].ts
    ok = Impression(
        impression_id="ok", user_id="x", ts=first, conv_type="t", scenario="s", features={}
    )
    poisoned = [
        ("impressions", dataclasses.replace(ok, impression_id="ms", ts=first * 1000)),
        ("impressions", dataclasses.replace(ok, impression_id="ahead", ts=first + 2 * DAY)),
        ("clicks", Click(impression_id="ok", user_id="x", ts=2**63 + 5)),
        ("conversions", Conversion(impression_id="neg", user_id="x", ts=-1)),
    ]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    # A plausible clock first, on both partitions: two events confirm it (one event alone
    # moves no clock, whatever its time).
    oks = [f"ok{partition}{n}" for partition in range(2) for n in "ab"]
    for name in oks:
        event = dataclasses.replace(ok, impression_id=name)
        producer.send("impressions", encode_event(event), partition=int(name[2]))
    for topic, event in poisoned:
        producer.send(topic, encode_event(event), partition=0)
    producer.send("clicks", None, key=b"tombstone", partition=1)
    producer.flush()
    producer.close()
    replay_log(broker.bootstrap, records)
    with JoinerWorkers(config, log_dir=tmp_path / "logs").start(1) as workers:
        workers.wait_for_end(240)
    examples, letters, _ = join_outputs(broker.bootstrap, config)

    want = expected(records, labels) | {(name, "non-click", 0) for name in oks}
    assert_deduped_equal(examples, want)
    assert Counter(d.reason for d in letters) == {"implausible-time": 4, "malformed": 1}
    assert {d.value for d in letters if d.reason == "malformed"} == {b""}

    db = f"sqlite:///{tmp_path / 'registry.db'}"
    train = [
        sys.executable, "-m", "ops.cli", "train", "--run", "poison", "--bootstrap",
        broker.bootstrap, "--db", db, "--snapshot-dir", str(tmp_path / "snapshots"),
        "--until-end", "--idle-timeout", "60", "--buckets", "256", "--hidden", "16",
        "--threads", "1", "--min-train-examples", "0",
    ]  # fmt: skip
    trained = subprocess.run(train, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert f"{len(examples)} examples seen" in trained.stdout
    for listing in (["runs", "list"], ["snapshots", "list", "poison"]):
        shown = subprocess.run(
            [sys.executable, "-m", "ops.cli", *listing, "--db", db], capture_output=True, text=True
        )
        assert shown.returncode == 0, shown.stderr
        assert "poison" in shown.stdout or "v1" in shown.stdout


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


@pytest.mark.slow
@pytest.mark.broker
def test_a_five_megabyte_impression_mid_log_is_a_dead_letter_and_costs_nothing_else(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Issue 19, finding 1: a 5 MB impression crashed a worker's agent (the producer's
    MessageSizeTooLargeError), real clicks in flight were lost and `mmn join` still ended
    with restarts=0 and no dead letter."""
    records = cli_log(tmp_path / "log", 20_000)
    config = JoinerConfig(bootstrap=broker.bootstrap)  # mmn join's partitions and topics
    create_joiner_topics(config)
    big_producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=16 << 20)
    big = Impression(
        impression_id="big", user_id="x", ts=0, conv_type="t", scenario="s",
        features={"blob": "x" * (5 << 20)},
    )  # fmt: skip

    def publish_big(publisher: KafkaPublisher, ts: int) -> None:
        publisher.flush()  # the big one lands after what came before it, in order
        value = encode_event(dataclasses.replace(big, ts=ts))
        big_producer.send("impressions", value, key=b"big").get(timeout=60)
        click = Click(impression_id="big", user_id="x", ts=ts)
        publisher.send("clicks", encode_event(click), key=b"big")

    replay_injecting(broker.bootstrap, records, after=len(records) // 2, inject=publish_big)
    big_producer.close()
    argv = [
        sys.executable, "-m", "ops.cli", "join", "--bootstrap", broker.bootstrap,
        "--until-end", "--timeout", "10m", "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    join = subprocess.run(argv, capture_output=True, text=True, timeout=700)
    assert join.returncode == 0, join.stderr[-2000:]
    last = join.stdout.strip().splitlines()[-1]

    examples, letters, batches = join_outputs(broker.bootstrap, config)
    want = expected(records, command_labels())
    assert_deduped_equal(examples, want)
    assert len(examples) == len(want)  # each exactly once
    rows = minibatch_rows(batches)
    assert set(rows) == {(i, k) for i, k, _ in want} and set(rows.values()) == {1}
    assert Counter(d.reason for d in letters) == {"too-large": 1, "orphan-click": 1}
    [letter] = [d for d in letters if d.reason == "too-large"]
    assert letter.size > 5 << 20 and len(letter.value) == 1024 and letter.topic == "impressions"
    assert f"{letter.size:,} bytes" in letter.detail
    assert "end of stream on all 4 partitions" in last, join.stdout[-2000:]
    assert "dead letters orphan-click:1 too-large:1; restarts 0" in last, last
    print(f"5 MB case: {len(examples)} examples of {len(want)} expected, {sum(rows.values())} rows")
    print(f"dead letters {Counter(d.reason for d in letters)}; {last}")


@pytest.mark.slow
@pytest.mark.broker
def test_an_impression_and_click_45_days_ahead_published_first_move_no_clock(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Issue 19, finding 6: one impression and its click dated 45 days into the log,
    published on empty topics just before it, set their topics' clocks: real events became
    late-event and orphan-click, how many depending on timing."""
    records = cli_log(tmp_path / "log", 20_000)
    labels = command_labels()
    config = JoinerConfig(bootstrap=broker.bootstrap, labels=labels)
    create_joiner_topics(config)
    ahead = records[0].ts + 45 * DAY
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    future = Impression(
        impression_id="future", user_id="x", ts=ahead, conv_type="t", scenario="s", features={}
    )
    producer.send("impressions", encode_event(future), key=b"future")
    click = Click(impression_id="future", user_id="x", ts=ahead)
    producer.send("clicks", encode_event(click), key=b"future")
    producer.flush()
    producer.close()
    with JoinerWorkers(config, log_dir=tmp_path / "logs").start(1) as workers:
        replay_log(broker.bootstrap, records)  # joined while it is published
        workers.wait_for_end(600)
    examples, letters, batches = join_outputs(broker.bootstrap, config)
    want = expected(records, labels) | {("future", "negative", 0)}
    assert_deduped_equal(examples, want)
    assert len(examples) == len(want)
    assert letters == []
    assert set(minibatch_rows(batches)) == {(i, k) for i, k, _ in want}
    print(f"future case: {len(examples)} examples of {len(want)} expected, 0 dead letters")
