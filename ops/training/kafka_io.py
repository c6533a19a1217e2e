"""The trainer's own Kafka end: the `snapshots` announcer (its source, shared with the
evaluator, is `ops.streams.kafka_source`)."""

from __future__ import annotations

import json
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ops.errors import TrainerIOError
from ops.store.snapshots import PublishedSnapshot
from streaming.health import BrokerWatch

# How long an announcement may fail while the watch still sees the broker answer: the watch
# probes every few seconds, so a broker that just went away is not seen as down at once.
ANNOUNCE_GRACE_S = 10.0


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
