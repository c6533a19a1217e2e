"""What the joiner has done, read from its output topics: what `mmn join` shows and serves.

The workers are separate processes; the supervisor learns their progress from what they
publish, which also survives their restarts: mini-batch headers (rows, watermark and end
per partition; copies after a restart dropped by (partition, seq)) and dead letters
(counted by reason; copies dropped by (topic, partition, offset)). Source events taken
in: the committed offsets of the joiner's consumer group on the source topics (markers
included), read at most every few seconds.
"""

from __future__ import annotations

import time
from collections import Counter

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from streaming.errors import SchemaError
from streaming.example import decode_deadletter
from streaming.joiner_app import JoinerConfig
from streaming.minibatch import minibatch_header


class JoinMonitor:
    """Follows `minibatches` and `deadletter` from the beginning; counts what the joiner did."""

    def __init__(self, config: JoinerConfig, *, offsets_every_s: float = 5.0) -> None:
        self.config = config
        self.offsets_every_s = offsets_every_s
        self.ended: set[int] = set()
        self.rows = 0
        self.watermarks: dict[int, int] = {}
        self.deadletters: Counter[str] = Counter()
        self.events_in: int | None = None
        self._batches: set[tuple[int, int]] = set()
        self._letters: set[tuple[str, int, int]] = set()
        self._offsets_at = 0.0
        names = config.topics
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.bootstrap,
            enable_auto_commit=False,
            client_id="mmn-join-monitor",
        )
        tps = [
            TopicPartition(topic, p)
            for topic in (names.minibatches, names.deadletter)
            for p in range(config.partitions)
        ]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self._admin: KafkaAdminClient | None = None

    @property
    def done(self) -> bool:
        """True once every partition's end mini-batch is out."""
        return len(self.ended) == self.config.partitions

    def poll(self, timeout_ms: int = 200) -> None:
        """Read what the joiner published since the last call."""
        try:
            fetched = self.consumer.poll(timeout_ms=timeout_ms)
        except KafkaError:
            return  # the broker watch reports outages; the consumer reconnects by itself
        for tp, records in fetched.items():
            for record in records:
                if tp.topic == self.config.topics.minibatches:
                    self._batch(record.value)
                else:
                    self._letter(record.value)
        if time.monotonic() - self._offsets_at >= self.offsets_every_s:
            self._offsets_at = time.monotonic()
            self.events_in = self._committed()

    def drain(self, idle_s: float = 1.0) -> None:
        """Read until nothing new came for idle_s: the last counts, once the joiner is done.

        An end batch can be read before dead letters published ahead of it on another
        topic (and end offsets lie on the embedded broker), hence the idle wait.
        """
        last = time.monotonic()
        while time.monotonic() - last < idle_s:
            before = (self.rows, len(self._batches), len(self._letters))
            self.poll(timeout_ms=100)
            if (self.rows, len(self._batches), len(self._letters)) != before:
                last = time.monotonic()

    def _batch(self, value: bytes) -> None:
        try:
            header = minibatch_header(value)
            key = (int(header["partition"]), int(header["seq"]))
        except (SchemaError, KeyError, TypeError, ValueError):
            return
        if key in self._batches:
            return
        self._batches.add(key)
        partition = key[0]
        self.rows += int(header.get("rows", 0))
        self.watermarks[partition] = max(header["watermark"], self.watermarks.get(partition, 0))
        if header.get("end"):
            self.ended.add(partition)

    def _letter(self, value: bytes) -> None:
        try:
            letter = decode_deadletter(value)
        except SchemaError:
            return
        if letter.dedupe_key not in self._letters:
            self._letters.add(letter.dedupe_key)
            self.deadletters[letter.reason] += 1

    def _committed(self) -> int | None:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    bootstrap_servers=self.config.bootstrap,
                    client_id="mmn-join-monitor",
                    request_timeout_ms=3000,
                    bootstrap_timeout_ms=3000,
                )
            sources = [
                TopicPartition(topic, p)
                for topic in self.config.topics.sources
                for p in range(self.config.partitions)
            ]
            group = self.config.app_id
            offsets = self._admin.list_group_offsets({group: sources}).get(group, {})
        except (KafkaError, OSError, ValueError):
            return self.events_in
        return sum(max(meta.offset, 0) for meta in offsets.values())

    def close(self) -> None:
        self.consumer.close()
        if self._admin is not None:
            self._admin.close()
