"""The joiner under faults, end to end: a SIGKILLed worker, poisoned timestamps, a 5 MB event,
events far ahead of the log's clock."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from joiner_support import (
    DAY,
    HOUR,
    assert_deduped_equal,
    cli_log,
    command_labels,
    expected,
    join_outputs,
    minibatch_rows,
    replay_injecting,
    replay_log,
    run_join,
    synthetic_records,
)
from kafka import KafkaProducer

from simulator.kafka_publisher import KafkaPublisher
from simulator.records import LogRecord
from streaming.broker import EmbeddedBroker
from streaming.events import Click, Conversion, Impression, encode_event
from streaming.joiner_app import JoinerConfig
from streaming.joiner_process import JoinerWorkers, create_joiner_topics
from streaming.labels import LabelConfig
from streaming.minibatch import decode_minibatch


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
