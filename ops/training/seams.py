"""The trainer's seams: where snapshots go, who hears of them, whether the broker answers,
how a message becomes rows. Production plugs in the store, the Kafka announcer, the broker
watch and the MMNB decoder; tests plug in fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ops.store.snapshots import PublishedSnapshot, Reconciliation
from ops.training.rows import LabeledRows


class Snapshots(Protocol):
    """Where the run's snapshots live (ops.store.snapshots.SnapshotStore in production)."""

    def reconcile(self) -> Reconciliation:
        """Make files and registry agree before anything is loaded."""

    def load_latest(self) -> tuple[PublishedSnapshot, dict[str, Any]] | None:
        """The newest snapshot that verifies and its payload; None when there is none."""

    def publish(
        self,
        payload: dict[str, Any],
        *,
        examples_seen: int,
        watermark: int | None,
        offsets: dict[str, int],
        metrics: dict[str, Any] | None = None,
        examples_trained: int | None = None,
    ) -> PublishedSnapshot:
        """Store payload as the run's next snapshot (metrics: kept with its registry row)."""


class Announcer(Protocol):
    """Tells others that a snapshot was published (the `snapshots` topic)."""

    def announce(self, snapshot: PublishedSnapshot) -> None: ...

    def close(self) -> None: ...


class Health(Protocol):
    """Whether the broker answers (streaming.health.BrokerWatch in production)."""

    @property
    def up(self) -> bool: ...

    @property
    def unreachable_s(self) -> float: ...

    def raise_if_expired(self, who: str) -> None:
        """Raise BrokerError once the broker has not answered for longer than allowed."""


Decoder = Callable[[bytes], LabeledRows]  # streaming.minibatch.decode_minibatch in production
