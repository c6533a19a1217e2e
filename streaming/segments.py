"""What the partition joiner cuts and returns: its batching config, the segments (one
mini-batch and its orphan dead letters each) and the outcome of one input message."""

from __future__ import annotations

from dataclasses import dataclass, field

from streaming.errors import StreamingError
from streaming.example import DeadLetter, Example

MIN_MESSAGE_BYTES = 65_536
# What a Kafka record batch adds around one message value (batch header, record header, key).
RECORD_OVERHEAD_BYTES = 512


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """How released decisions are cut into mini-batches.

    Attributes:
        batch_size: most examples per mini-batch.
        max_span_s: most event-time seconds between a batch's first and last decision, so a quiet
            stream still delivers fresh batches (cut by event time, never wall clock).
        max_message_bytes: largest message the joiner sends (its producer's limit; keep it within
            the broker's): a mini-batch is cut before it grows past it, and an input event larger
            than 1/32 of it is a dead letter `too-large`.
    """

    batch_size: int = 1024
    max_span_s: int = 3600
    max_message_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        if self.max_message_bytes < MIN_MESSAGE_BYTES:
            raise StreamingError(
                f"BatchConfig.max_message_bytes must be >= {MIN_MESSAGE_BYTES}, "
                f"got {self.max_message_bytes}"
            )
        if self.batch_size < 1:
            raise StreamingError(f"BatchConfig.batch_size must be >= 1, got {self.batch_size}")
        if self.max_span_s < 1:
            raise StreamingError(
                f"BatchConfig.max_span_s must be >= 1 second, got {self.max_span_s}"
            )

    @property
    def event_bytes(self) -> int:
        """The largest input event joined: a table record holds up to three, each of which
        JSON may escape to three times its size, and a mini-batch header lists its fields."""
        return self.max_message_bytes // 32

    @property
    def minibatch_bytes(self) -> int:
        """The largest encoded mini-batch: the message limit less the record's own overhead."""
        return self.max_message_bytes - RECORD_OVERHEAD_BYTES


@dataclass(frozen=True, kw_only=True)
class Segment:
    """A cut of the released decision sequence: one mini-batch plus its orphan dead letters.

    seq numbers the partition's mini-batches (None when the segment has no example and is
    not the end); watermark: every decision of the partition with label_ts < watermark is
    in this segment or an earlier one.
    """

    partition: int
    seq: int | None
    examples: tuple[Example, ...]
    deadletters: tuple[DeadLetter, ...]
    watermark: int
    end: bool
    cursor: tuple[int, int, str] | None
    next_seq: int


@dataclass
class Step:
    """What one input message leads to: immediate dead letters and completed segments."""

    deadletters: list[DeadLetter] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
