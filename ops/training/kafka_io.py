"""The trainer's Kafka ends: the `minibatches` source and the `snapshots` announcer.

The source assigns every partition of the topic to itself (no consumer group: no join
delay, no rebalance in the middle of a mini-batch) and seeks to the offsets the run's
snapshot stored; where to resume is the snapshot's business, not the broker's.

It never pauses a partition: with kafka-python 3.0 against the embedded broker, a
partition paused and resumed was not fetched again (measured: it stalled for good at the
offset where it was paused). The trainer bounds its buffer instead (ops.training.trainer).
"""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from ops.errors import TrainerIOError
from ops.store.snapshots import PublishedSnapshot
from streaming.health import BrokerWatch
from streaming.source import Message

# How long an announcement may fail while the watch still sees the broker answer: the watch
# probes every few seconds, so a broker that just went away is not seen as down at once.
ANNOUNCE_GRACE_S = 10.0


class KafkaSource:
    """All partitions of one topic (or one rank's share of them), read by kafka-python from
    the offsets the run stored.

    share: (rank, world): only the partitions p with p % world == rank (data-parallel
    training, `ops.training.data_parallel`); None: every partition.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        metadata_timeout_s: float = 30.0,
        max_poll_records: int = 64,
        share: tuple[int, int] | None = None,
    ) -> None:
        self.topic = topic
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                client_id="mmn-trainer",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=max_poll_records,
                fetch_max_bytes=64 * 1024 * 1024,
                # A few mini-batches per partition and fetch, so that a poll brings every
                # partition some (the trainer interleaves them by event time).
                max_partition_fetch_bytes=2 * 1024 * 1024,
            )
        except KafkaError as exc:
            raise TrainerIOError(f"cannot reach the broker at {bootstrap}: {exc!r}") from exc
        deadline = time.monotonic() + metadata_timeout_s
        partitions = self.consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = self.consumer.partitions_for_topic(topic)
        if not partitions:
            self.consumer.close()
            raise TrainerIOError(
                f"topic {topic!r} has no partitions on {bootstrap} after {metadata_timeout_s:.0f}s; "
                "is the joiner running (it creates the topic)?"
            )
        if share is not None:
            partitions = {p for p in partitions if p % share[1] == share[0]}
        self._partitions = frozenset(partitions)
        self._assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        self.consumer.assign(self._assigned)

    def partitions(self) -> frozenset[int]:
        return self._partitions

    def seek(self, offsets: dict[str, int]) -> None:
        for tp in self._assigned:
            offset = offsets.get(str(tp.partition))
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    def poll(self, timeout_s: float) -> list[Message]:
        try:
            records = self.consumer.poll(timeout_ms=int(timeout_s * 1000))
        except KafkaError as exc:
            raise TrainerIOError(f"cannot read topic {self.topic!r}: {exc!r}") from exc
        return [
            Message(partition=tp.partition, offset=record.offset, value=record.value)
            for tp, batch in records.items()
            for record in batch
        ]

    def lag(self, offsets: dict[str, int]) -> int | None:
        total = 0
        for tp in self._assigned:
            high = self.consumer.highwater(tp)
            if high is None:
                return None
            total += max(high - offsets.get(str(tp.partition), 0), 0)
        return total

    def close(self) -> None:
        self.consumer.close()


class KafkaAnnouncer:
    """Publishes one JSON message per snapshot on the `snapshots` topic, keyed by run name.

    Every wait on the broker is bounded by `wait_s`; while `health` sees the broker down, a
    failed announcement is retried until the outage outlasts --broker-timeout (BrokerError),
    so a snapshot due in an outage neither kills the daemon early nor holds it past its
    timeout. Without `health`, the first failure raises TrainerIOError.
    """

    def __init__(
        self, bootstrap: str, topic: str, *, health: BrokerWatch | None = None, wait_s: float = 2.0
    ) -> None:
        self.topic = topic
        self.health = health
        self.wait_s = wait_s
        # A send not yet acknowledged: a retry waits on it again instead of sending twice.
        self._pending: tuple[tuple[str, int], Any] | None = None
        try:
            self.producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="mmn-trainer",
                max_block_ms=int(wait_s * 1000),  # send() waiting for metadata
            )
        except KafkaError as exc:
            raise TrainerIOError(f"cannot reach the broker at {bootstrap}: {exc!r}") from exc

    def announce(self, snapshot: PublishedSnapshot) -> None:
        failing_since: float | None = None
        while True:
            try:
                self._announce_once(snapshot)
                return
            except TrainerIOError:
                now = time.monotonic()
                failing_since = now if failing_since is None else failing_since
                if self.health is None or (
                    self.health.up and now - failing_since >= ANNOUNCE_GRACE_S
                ):
                    raise
                self.health.raise_if_expired(f"run {snapshot.run}")

    def _announce_once(self, snapshot: PublishedSnapshot) -> None:
        value = {
            "v": 1,
            "run": snapshot.run,
            "version": snapshot.version,
            "path": snapshot.path,
            "sha256": snapshot.sha256,
            "examples_seen": snapshot.examples_seen,
            "watermark": snapshot.watermark,
        }
        key = (snapshot.run, snapshot.version)
        try:
            if self._pending is None or self._pending[0] != key:
                future = self.producer.send(
                    self.topic, key=snapshot.run.encode(), value=json.dumps(value).encode()
                )
                self._pending = (key, future)
            pending = self._pending[1]
            pending.get(timeout=self.wait_s)
            self._pending = None
        except KafkaError as exc:
            if self._pending is not None and self._pending[1].is_done:
                self._pending = None  # failed for good: a retry sends again
            raise TrainerIOError(
                f"snapshot v{snapshot.version} of run {snapshot.run!r} is published but could not "
                f"be announced on {self.topic!r}: {exc!r}"
            ) from exc

    def close(self) -> None:
        # Bounded: with the broker gone, pending sends must not hold the exit.
        try:
            self.producer.close(timeout=self.wait_s)
        except KafkaError as exc:
            # kafka-python 3.0's close() raises without closing while a send is pending (and
            # its __del__ would raise again at exit): fail the pending sends (announcements
            # only; the snapshots are in the registry), then close without waiting.
            self.producer._accumulator.abort_batches(exc)
            self.producer.close(timeout=0)
