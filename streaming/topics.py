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


def admin_client(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
    """An admin client of the broker at bootstrap (close it); a BrokerError if unreachable."""
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="mmn-admin",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(min(timeout_s, 5.0) * 1000),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach the broker at {bootstrap}: {exc!r}") from exc


def create_topics(bootstrap: str, partitions: dict[str, int], *, timeout_s: float = 15.0) -> None:
    """Create each topic with its partition count, or check the count of one that exists.

    A topic that exists with another partition count is a BrokerError naming it: a joiner
    expecting 4 partitions of a topic replayed into 2 would otherwise wait for ever.
    """
    for name, count in partitions.items():
        if count < 1:
            raise BrokerError(f"topic {name!r}: --partitions is {count}; it must be at least 1")
    admin = admin_client(bootstrap, timeout_s)
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
        _check_counts(admin, {n: c for n, c in partitions.items() if n in existing}, bootstrap)
    except KafkaError as exc:
        raise BrokerError(
            f"cannot create topics {sorted(partitions)} on {bootstrap}: {exc!r}"
        ) from exc
    finally:
        admin.close()


def _check_counts(admin: KafkaAdminClient, expected: dict[str, int], bootstrap: str) -> None:
    if not expected:
        return
    found = {
        topic["name"]: len(topic["partitions"]) for topic in admin.describe_topics(list(expected))
    }
    wrong = [
        f"{name!r} has {found.get(name, 0)}, expected {count}"
        for name, count in expected.items()
        if found.get(name) != count
    ]
    if wrong:
        raise BrokerError(
            f"topics on {bootstrap} have other partition counts: {'; '.join(wrong)}; use the "
            "same --partitions as the replay that created them, or a fresh broker"
        )
