"""Topic names and explicit topic creation (the embedded broker does not auto-create well)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streaming.errors import BrokerError


@dataclass(frozen=True, kw_only=True)
class TopicNames:
    """Names of the project's topics; every one is configurable."""

    impressions: str = "impressions"
    clicks: str = "clicks"
    conversions: str = "conversions"
    examples: str = "examples"
    minibatches: str = "minibatches"
    deadletter: str = "deadletter"
    snapshots: str = "snapshots"

    @property
    def sources(self) -> tuple[str, str, str]:
        """The three topics the replay publishes to."""
        return (self.impressions, self.clicks, self.conversions)


def create_topics(bootstrap: str, partitions: dict[str, int], *, timeout_s: float = 15.0) -> None:
    """Create each topic with its partition count; a topic that exists already is left alone."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="mmn-admin",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(min(timeout_s, 5.0) * 1000),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc!r}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=count, replication_factor=1)
            for name, count in partitions.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
    except KafkaError as exc:
        raise BrokerError(
            f"cannot create topics {sorted(partitions)} on {bootstrap}: {exc!r}"
        ) from exc
    finally:
        admin.close()
