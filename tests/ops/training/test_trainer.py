"""The trainer loop with an in-memory source: snapshots, resume from stored offsets, stop conditions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from learner_rows import ListSource, learner_config, make_rows

from ops.store.database import list_snapshots, open_registry
from ops.store.snapshot_files import load_snapshot
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import OnlineLearner
from ops.training.trainer import Trainer, TrainerConfig
from streaming.errors import BrokerError, SchemaError

BATCH = 32


def stream(
    n_batches: int, partitions: int = 2
) -> tuple[dict[int, list[bytes]], dict[bytes, object]]:
    """n_batches mini-batches spread over partitions, then an end marker on each."""
    data: dict[int, list[bytes]] = {p: [] for p in range(partitions)}
    end = make_rows(n_batches * BATCH, 0)
    decoded: dict[bytes, object] = {b"end": dataclasses.replace(end, end=True)}
    for b in range(n_batches):
        key = f"b{b}".encode()
        decoded[key] = make_rows(b * BATCH, BATCH)
        data[b % partitions].append(key)
    for p in data:
        data[p].append(b"end")
    return data, decoded


def decoder(decoded: dict[bytes, object]):
    def decode(value: bytes):
        if value not in decoded:
            raise SchemaError(f"not a mini-batch: {value!r}")
        return decoded[value]

    return decode


class Recorder:
    def __init__(self) -> None:
        self.announced = []
        self.snapshots = []

    def announce(self, snapshot) -> None:
        self.announced.append(snapshot.version)
        self.snapshots.append(snapshot)

    def close(self) -> None:
        pass


@pytest.fixture
def env(tmp_path: Path):
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    stores = []

    def trainer(data, decoded, learner=None, **config) -> Trainer:
        for store in stores:
            store.close()
        store = SnapshotStore(
            SnapshotStoreConfig(directory=tmp_path / "snapshots"),
            Session,
            run="r1",
            model="mmn",
            run_config={},
        )
        stores.append(store)
        return Trainer(
            TrainerConfig(run="r1", progress_every_s=0.0, **{"min_train_examples": 0, **config}),
            new_learner=lambda: OnlineLearner(learner_config(**(learner or {}))),
            store=store,
            source=ListSource(data),
            decode=decoder(decoded),
            announcer=Recorder(),
        )

    yield trainer, Session
    for store in stores:
        store.close()


def test_trains_every_batch_snapshots_periodically_and_stops_at_the_end(env) -> None:
    make, Session = env
    data, decoded = stream(10)
    trainer = make(data, decoded, snapshot_every_examples=4 * BATCH, until_end=True)
    outcome = trainer.run()
    assert outcome.reason == "end-of-stream"
    assert outcome.batches == 10 and outcome.examples_seen == 10 * BATCH
    with Session() as session:
        rows = list_snapshots(session, "r1")
    assert [r.examples_seen for r in rows] == [4 * BATCH, 8 * BATCH, 10 * BATCH]
    assert rows[-1].offsets == {"0": 6, "1": 6}  # five batches and the end marker per partition
    assert trainer.announcer.announced == [1, 2, 3]
    for row in rows:
        payload = load_snapshot(row.path, row.sha256)
        assert payload["extra"]["offsets"] == row.offsets
        assert payload["extra"]["examples_seen"] == row.examples_seen


def test_no_snapshot_before_the_minimum_of_trained_examples(env) -> None:
    make, Session = env
    data, decoded = stream(10)
    # Steps only every 3 * BATCH rows: after batch 1 the rows are gathered, not trained.
    trainer = make(
        data,
        decoded,
        learner={"min_step_rows": 3 * BATCH},
        snapshot_every_examples=BATCH,
        min_train_examples=5 * BATCH,
        until_end=True,
    )
    trainer.run()
    rows = trainer.announcer.snapshots  # every one published (the store keeps the newest 3)
    # Steps after 3, 6 and 9 batches (96, 192, 288 trained); the 10th stays gathered, and
    # the stop's snapshot records the end markers' offsets.
    assert [(r.examples_seen, r.examples_trained) for r in rows] == [
        (6 * BATCH, 6 * BATCH),
        (7 * BATCH, 6 * BATCH),
        (8 * BATCH, 6 * BATCH),
        (9 * BATCH, 9 * BATCH),
        (10 * BATCH, 9 * BATCH),
        (10 * BATCH, 9 * BATCH),
    ]
    with Session() as session:
        kept = list_snapshots(session, "r1")
    # The store keeps the newest 3, and the links their delta chains go through.
    assert [r.examples_trained for r in kept[-3:]] == [9 * BATCH] * 3
    parents = {r.version: r.parent_version for r in kept}
    links = {parents[v] for v in parents if parents[v] is not None}
    assert {r.version for r in kept[:-3]} <= links


def test_a_run_stopped_before_the_minimum_publishes_nothing_and_restarts_from_the_start(
    env,
) -> None:
    make, Session = env
    data, decoded = stream(10)
    first = make(
        data, decoded, snapshot_every_examples=BATCH, min_train_examples=20 * BATCH, max_batches=4
    )
    assert first.run().last_snapshot is None and first.announcer.snapshots == []
    second = make(data, decoded, snapshot_every_examples=None, until_end=True)
    outcome = second.run()
    assert outcome.batches == 10 and outcome.examples_seen == 10 * BATCH


def test_a_restart_resumes_from_the_stored_offsets_without_training_anything_twice(env) -> None:
    make, Session = env
    data, decoded = stream(12)
    first = make(data, decoded, snapshot_every_examples=None, max_batches=5).run()
    assert first.reason == "max-batches" and first.examples_seen == 5 * BATCH
    second = make(data, decoded, snapshot_every_examples=None, until_end=True).run()
    assert second.batches == 7
    assert second.examples_seen == 12 * BATCH
    with Session() as session:
        assert [r.examples_seen for r in list_snapshots(session, "r1")] == [5 * BATCH, 12 * BATCH]


def test_a_stop_request_finishes_the_batch_and_snapshots(env) -> None:
    make, Session = env
    data, decoded = stream(10)
    trainer = make(data, decoded, snapshot_every_examples=None)
    inner = trainer.learner.step
    steps = []

    def step_then_stop(rows):
        steps.append(rows)
        if len(steps) == 4:
            trainer.stop_requested.set()  # what the SIGTERM handler does, mid-batch
        return inner(rows)

    trainer.learner.step = step_then_stop
    outcome = trainer.run()
    assert outcome.reason == "signal"
    assert outcome.last_snapshot.examples_seen == outcome.examples_seen == 4 * BATCH
    assert outcome.last_snapshot.offsets == {"0": 2, "1": 2}  # event-time order: b0 b1 b2 b3


def test_snapshots_by_event_time(env) -> None:
    make, Session = env
    data, decoded = stream(8)
    make(
        data,
        decoded,
        snapshot_every_examples=None,
        snapshot_every_event_s=3 * BATCH,
        until_end=True,
    ).run()
    with Session() as session:
        watermarks = [r.watermark for r in list_snapshots(session, "r1")]
    assert len(watermarks) >= 2
    assert all(b - a >= 3 * BATCH for a, b in zip(watermarks[:-2], watermarks[1:-1], strict=True))


def test_an_undecodable_message_is_skipped_and_its_offset_consumed(env) -> None:
    make, Session = env
    data, decoded = stream(4)
    data[0].insert(1, b"garbage")
    outcome = make(data, decoded, until_end=True).run()
    assert outcome.examples_seen == 4 * BATCH
    assert outcome.last_snapshot.offsets == {"0": 4, "1": 3}


def test_a_corrupt_latest_snapshot_falls_back_and_the_lost_work_is_redone(env) -> None:
    make, Session = env
    data, decoded = stream(9)
    make(data, decoded, snapshot_every_examples=3 * BATCH, max_batches=6).run()
    with Session() as session:
        latest = list_snapshots(session, "r1")[-1]
    data_bytes = bytearray(Path(latest.path).read_bytes())
    data_bytes[-1] ^= 0xFF
    Path(latest.path).write_bytes(bytes(data_bytes))
    outcome = make(data, decoded, snapshot_every_examples=None, until_end=True).run()
    assert outcome.batches == 6  # batches 3..8: from the previous good snapshot's offsets
    assert outcome.examples_seen == 9 * BATCH


def test_partitions_are_interleaved_by_event_time_whatever_the_fetch_order(env) -> None:
    make, Session = env
    data, decoded = stream(8)
    trainer = make(data, decoded, snapshot_every_examples=None, until_end=True)
    order = []
    inner = trainer.learner.step

    def record(rows):
        order.append(rows.watermark)
        return inner(rows)

    trainer.learner.step = record
    trainer.run()
    assert order == sorted(order) and len(order) == 8


class Expiring:
    """A broker watch whose outage passes --broker-timeout once `expired` is set."""

    up = True
    unreachable_s = 0.0

    def __init__(self) -> None:
        self.expired = False

    def raise_if_expired(self, who: str) -> None:
        if self.expired:
            raise BrokerError(f"{who}: the broker has not answered for 99s; giving up")


def test_a_lost_broker_stops_the_training_of_a_full_buffer_at_the_next_batch(env) -> None:
    make, _ = env
    data, decoded = stream(10)
    trainer = make(data, decoded, snapshot_every_examples=None, until_end=True)
    trainer.source.chunk = 100  # the first poll buffers the whole stream
    trainer.health = health = Expiring()
    inner, steps = trainer.learner.step, []

    def step_then_expire(rows):
        steps.append(rows)
        health.expired = len(steps) == 3  # the broker's timeout passes mid-buffer
        return inner(rows)

    trainer.learner.step = step_then_expire
    with pytest.raises(BrokerError, match="has not answered"):
        trainer.run()
    assert len(steps) == 3  # not the 7 batches still buffered
    assert trainer.last_snapshot is None  # a crash: a restart resumes from the last snapshot


class Outage(ListSource):
    """A source whose partition 1 delivers nothing for its first `silent` polls (a paused broker)."""

    def __init__(self, data, silent: int) -> None:
        super().__init__(data)
        self.silent = silent

    def poll(self, timeout_s: float):
        self.silent -= 1
        held = self.position[1]
        out = super().poll(timeout_s)
        if self.silent >= 0:
            self.position[1] = held  # nothing of partition 1 arrives, and nothing is lost
        return [m for m in out if m.partition != 1 or self.silent < 0]


def _order_under_outage(make, data, decoded, **config) -> list[int]:
    trainer = make(data, decoded, snapshot_every_examples=None, until_end=True, **config)
    trainer.source = Outage(data, silent=20)
    order, inner = [], trainer.learner.step

    def record(rows):
        order.append(rows.watermark)
        return inner(rows)

    trainer.learner.step = record
    trainer.run()
    return order


def test_by_default_a_silent_partition_is_waited_for_and_the_wait_is_shown(env, caplog) -> None:
    make, _ = env
    data, decoded = stream(8)
    with caplog.at_level("INFO", logger="ops.training.trainer"):
        order = _order_under_outage(make, data, decoded)
    assert order == sorted(order) and len(order) == 8  # the outage changed nothing
    waits = [r.getMessage() for r in caplog.records if "waiting=p1/" in r.getMessage()]
    assert waits, "the progress line never showed the wait for partition 1"


def test_training_past_a_silent_partition_is_an_explicit_option(env) -> None:
    make, _ = env
    data, decoded = stream(8)
    order = _order_under_outage(make, data, decoded, partition_wait_s=0.0)
    assert len(order) == 8 and order != sorted(order)  # p0 trained past the silent p1
