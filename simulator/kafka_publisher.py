"""The replay's publisher on Kafka (kafka-python), tuned for throughput, failing fast.

Every Kafka error becomes a ReplayError: a broker that cannot be reached at the start, a
send that cannot get metadata within `max_block_ms`, a batch that is not acknowledged
within `delivery_timeout_ms` (reported at the next send or at flush). Nothing waits for
ever on a broker that went away.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

from simulator.errors import ReplayError


@dataclass(frozen=True, kw_only=True)
class PublisherConfig:
    """Producer settings: batching for throughput, bounded waits for a dead broker.

    linger_ms / batch_size: how long and how much to batch per partition.
    bootstrap_timeout_ms: longest the first connection to the broker may take.
    max_block_ms: longest a send may block (metadata, full buffer).
    request_timeout_ms / delivery_timeout_ms: longest a batch may wait for its ack.
    flush_timeout_s: longest the final flush may take.
    acks: 1 (leader only) keeps the replay fast; "all" for a replicated deployment.
    """

    linger_ms: int = 20
    batch_size: int = 512 * 1024
    bootstrap_timeout_ms: int = 5_000
    max_block_ms: int = 10_000
    request_timeout_ms: int = 10_000
    delivery_timeout_ms: int = 30_000
    flush_timeout_s: float = 60.0
    acks: int | str = 1


class KafkaPublisher:
    """A kafka-python producer behind the replay's `Publisher` seam."""

    def __init__(self, bootstrap: str, config: PublisherConfig | None = None) -> None:
        self.bootstrap = bootstrap
        self.config = config or PublisherConfig()
        self._error: BaseException | None = None
        c = self.config
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="mmn-replay",
                acks=c.acks,
                linger_ms=c.linger_ms,
                batch_size=c.batch_size,
                max_block_ms=c.max_block_ms,
                bootstrap_timeout_ms=c.bootstrap_timeout_ms,
                request_timeout_ms=c.request_timeout_ms,
                delivery_timeout_ms=c.delivery_timeout_ms,
                retries=3,
            )
        except KafkaError as exc:
            raise ReplayError(
                f"cannot reach the broker at {bootstrap}: {exc!r}; is it running?"
            ) from exc

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise ReplayError(
                f"publishing to {self.bootstrap} failed: {self._error!r}; "
                "the broker went away or refused the messages"
            ) from self._error

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None
    ) -> None:
        """Queue one message; raises ReplayError for this send or an earlier failed one."""
        self._raise_if_failed()
        try:
            future = self._producer.send(topic, value=value, key=key, partition=partition)
        except KafkaError as exc:
            raise ReplayError(
                f"cannot publish to topic {topic!r} on {self.bootstrap}: {exc!r}; "
                "the broker went away or the topic does not exist"
            ) from exc
        future.add_errback(self._failed)

    def flush(self) -> None:
        """Wait until every queued message is acknowledged; ReplayError if any was not."""
        try:
            self._producer.flush(timeout=self.config.flush_timeout_s)
        except KafkaError as exc:
            raise ReplayError(
                f"messages to {self.bootstrap} were not acknowledged within "
                f"{self.config.flush_timeout_s:.0f}s: {exc!r}"
            ) from exc
        self._raise_if_failed()

    def partitions(self, topic: str) -> int:
        """The partition count of a topic, from the broker's metadata."""
        try:
            found = self._producer.partitions_for(topic)
        except KafkaError as exc:
            raise ReplayError(
                f"no metadata for topic {topic!r} on {self.bootstrap}: {exc!r}"
            ) from exc
        if not found:
            raise ReplayError(
                f"topic {topic!r} does not exist on {self.bootstrap}; create it first"
            )
        return len(found)

    def close(self) -> None:
        """Close the producer without waiting long for a broker that is gone."""
        self._producer.close(timeout=2)
