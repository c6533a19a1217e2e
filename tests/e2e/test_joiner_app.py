"""End to end against the embedded broker: replay a synthetic log, join, read the outputs back."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from joiner_support import (
    assert_deduped_equal,
    expected,
    join_outputs,
    replay_log,
    run_join,
    small_join_config,
    synthetic_records,
)
from kafka import KafkaProducer

from simulator.records import LogRecord
from streaming.broker import EmbeddedBroker
from streaming.events import Click, Conversion, Impression, encode_event
from streaming.joiner_app import ChangelogStore
from streaming.joiner_process import JoinerWorkers
from streaming.labels import LabelConfig
from streaming.minibatch import decode_minibatch
from streaming.partition_joiner import meta_key


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
    config = small_join_config(broker.bootstrap)
    labels = config.labels
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
