"""The replay's publisher on Kafka (kafka-python), tuned for throughput, failing fast.

Every Kafka error becomes a ReplayError: a broker that cannot be reached at the start,
and, mid-replay, a broker that has not answered for `broker_timeout_s` (a send blocks on a
full buffer, batches are retried; reported at the next send or at flush). Nothing waits
for ever on a broker that went away, and a broker back within the timeout loses nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from simulator.errors import ReplayError


@dataclass(frozen=True, kw_only=True)
class PublisherConfig:
    """Producer settings: batching for throughput, bounded waits for a dead broker.

    Attributes:
        linger_ms: how long to batch per partition.
        batch_size: how much to batch per partition.
        bootstrap_timeout_ms: longest the first connection to the broker may take.
        broker_timeout_s: longest outage of the broker mid-replay: sends block and batches are
            retried meanwhile (idempotent producer: a retried batch is never stored twice), then the
            replay fails (`--broker-timeout`).
        request_timeout_ms: longest wait for one produce answer before it is retried.
    """

    linger_ms: int = 20
    batch_size: int = 512 * 1024
    bootstrap_timeout_ms: int = 5_000
    broker_timeout_s: float = 300.0
    request_timeout_ms: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.broker_timeout_s < float("inf"):
            raise ReplayError(
                f"PublisherConfig.broker_timeout_s must be > 0 seconds, got {self.broker_timeout_s}"
            )

    def producer_settings(self) -> dict[str, Any]:
        """kafka-python KafkaProducer arguments (also what `mmn bench replay` compares with)."""
        return {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "max_block_ms": int(self.broker_timeout_s * 1000),
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "delivery_timeout_ms": int(self.broker_timeout_s * 1000) + self.request_timeout_ms,
            "retries": 2**31 - 1,  # bounded by delivery_timeout_ms
            # One request in flight: a batch retried after an outage can never land behind
            # a later one (the joiner takes each partition's order as event order).
            "max_in_flight_requests_per_connection": 1,
        }


class Health(Protocol):
    """Whether the broker has been gone too long (streaming.health.BrokerWatch)."""

    @property
    def expired(self) -> bool: ...

    @property
    def unreachable_s(self) -> float: ...


class KafkaPublisher:
    """A kafka-python producer behind the replay's `Publisher` seam."""

    def __init__(
        self,
        bootstrap: str,
        config: PublisherConfig | None = None,
        *,
        health: Health | None = None,
    ) -> None:
        """health: a running broker watch; once it has expired, every send fails at once."""
        self.bootstrap = bootstrap
        self.config = config or PublisherConfig()
        self.health = health
        self._error: BaseException | None = None
        c = self.config
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                client_id="mmn-replay",
                **c.producer_settings(),
            )
        except KafkaError as exc:
            raise ReplayError(
                f"cannot reach the broker at {bootstrap}: {exc!r}; is it running?"
            ) from exc

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc

    def _raise_if_failed(self) -> None:
        if self.health is not None and self.health.expired:
            raise ReplayError(
                f"the broker at {self.bootstrap} has not answered for "
                f"{self.health.unreachable_s:.0f}s (--broker-timeout "
                f"{self.config.broker_timeout_s:.0f}s); the replay is incomplete"
            )
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
        timeout_s = self.config.broker_timeout_s + self.config.request_timeout_ms / 1000
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise ReplayError(
                f"messages to {self.bootstrap} were not acknowledged within {timeout_s:.0f}s: "
                f"{exc!r}"
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
        """Close the producer without waiting long for a broker that is gone (never raises)."""
        with contextlib.suppress(KafkaError):
            self._producer.close(timeout=2)
