"""Mini-batches of several partitions, released in event-time order (the trainer's merge)."""

from __future__ import annotations

import math
from collections import deque

from ops.training.rows import LabeledRows
from streaming.source import Message


class PartitionMerge:
    """Buffers decoded mini-batches per partition and releases them in event-time order.

    The next mini-batch is the head with the lowest watermark (ties: lowest partition), so
    the training order interleaves partitions by event time whatever the fetch order was,
    and is the same at any replay speed. With `wait_for_all`, nothing is released while an
    expected partition has nothing buffered (more may be fetched); the trainer stops
    waiting once a partition holds `depth` mini-batches, which bounds the memory.
    """

    def __init__(self, depth: int = 32) -> None:
        self.depth = depth
        self._queues: dict[int, deque[tuple[Message, LabeledRows | None]]] = {}

    def __bool__(self) -> bool:
        return any(self._queues.values())

    def push(self, message: Message, decoded: LabeledRows | None) -> None:
        self._queues.setdefault(message.partition, deque()).append((message, decoded))

    def ready(self, expected: frozenset[int]) -> bool:
        """True when every expected partition has a mini-batch buffered."""
        return bool(expected) and all(self._queues.get(p) for p in expected)

    def missing(self, expected: frozenset[int]) -> list[int]:
        """The expected partitions with nothing buffered, in order."""
        return sorted(p for p in expected if not self._queues.get(p))

    def full(self) -> bool:
        """True once some partition holds `depth` mini-batches: release without waiting."""
        return any(len(q) >= self.depth for q in self._queues.values())

    def pop(
        self, expected: frozenset[int], *, wait_for_all: bool
    ) -> tuple[Message, LabeledRows | None] | None:
        heads = {p: q[0] for p, q in self._queues.items() if q}
        if not heads or (wait_for_all and not expected <= heads.keys()):
            return None

        def order(p: int) -> tuple[float, int]:
            # An undecodable message goes first: it is only skipped. So does a mini-batch
            # without a watermark, which orders nothing.
            decoded = heads[p][1]
            watermark = None if decoded is None else decoded.watermark
            return (-math.inf if watermark is None else watermark, p)

        return self._queues[min(heads, key=order)].popleft()
