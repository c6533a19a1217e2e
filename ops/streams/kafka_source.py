"""The `minibatches` topic as a `streaming.source.Source`, read by the trainer and the evaluator.

The source assigns every partition of the topic to itself (no consumer group: no join
delay, no rebalance in the middle of a mini-batch) and seeks to the offsets its reader
stored (the run's snapshot, the experiment's row): where to resume is the reader's
business, not the broker's.

It never pauses a partition: with kafka-python 3.0 against the embedded broker, a
partition paused and resumed was not fetched again (measured: it stalled for good at the
offset where it was paused). The trainer bounds its buffer instead (ops.training.trainer).
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ops.errors import TrainerIOError
from streaming.source import Message


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
