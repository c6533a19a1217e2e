"""Reading a partitioned topic: one consumed message, and what a reader of a topic offers.

The trainer reads the `minibatches` topic through a `Source` (ops.training.kafka_io.KafkaSource
with Kafka, a list in tests); any other consumer of a topic's partitions can use the same seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Message:
    """One consumed message: where it came from and its undecoded value."""

    partition: int
    offset: int
    value: bytes


class Source(Protocol):
    """Where messages come from, each partition in offset order, from offsets the reader keeps."""

    def seek(self, offsets: dict[str, int]) -> None:
        """Continue each partition at offsets[str(partition)], the others from the beginning."""

    def poll(self, timeout_s: float) -> list[Message]:
        """The next messages, in offset order per partition; [] after timeout_s without any."""

    def partitions(self) -> frozenset[int]:
        """The partitions being read."""

    def lag(self, offsets: dict[str, int]) -> int | None:
        """Messages behind the end of the stream, if known (approximate; display only)."""

    def close(self) -> None:
        """Stop reading; release the connection."""
