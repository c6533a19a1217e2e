"""The embedded broker's memory: what a replay will hold there, and whether it fits.

The embedded broker (Tansu 0.6.0, `memory://` storage) keeps every record of every topic
in RAM until it stops, and nothing bounds it: its memory engine answers the Kafka
protocol's DeleteRecords with `todo!()` (the connection drops, nothing is deleted), and
nothing in it enforces topic retention (`retention.ms`, `retention.bytes`, segments): its
periodic maintenance only feeds an optional lake house. A replay through the pipeline
therefore leaves in it the source events and what the joiner derives from them (examples,
mini-batches) until the end.

The cost per event is measured by `mmn bench pipeline` at two log sizes (the broker's peak
RSS during the whole pipeline, docs/benchmarks.md): `BROKER_BASE_BYTES` plus
`BROKER_BYTES_PER_EVENT` per replayed event. A replay whose estimate exceeds the memory the
machine has available is refused before it starts (`MemoryCheck`, used by `mmn replay`): a
real Kafka honours retention, so the full log goes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from streaming.errors import BrokerError

# `mmn bench pipeline --rows 50000` and `--rows 200000` on one machine: the broker's peak
# RSS (with its `mmn broker` wrapper) was 316 MB at 105,811 events and 1,001 MB at 423,320,
# a rise of 2,262 bytes per replayed event above an intercept of 92 MB (docs/benchmarks.md).
BROKER_BYTES_PER_EVENT = 2_262
BROKER_BASE_BYTES = 92_000_000

GB = 1 << 30


def estimate_bytes(events: int) -> int:
    """The embedded broker's peak RSS for a pipeline replaying `events` events."""
    return BROKER_BASE_BYTES + BROKER_BYTES_PER_EVENT * events


def available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The memory this machine has available now (MemAvailable), in bytes."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise BrokerError(f"{meminfo} has no MemAvailable line: cannot tell the memory available")


@dataclass(frozen=True)
class MemoryCheck:
    """A replay's estimated footprint in the embedded broker against the memory available."""

    events: int
    available: int

    @property
    def needed(self) -> int:
        return estimate_bytes(self.events)

    @property
    def fits(self) -> bool:
        return self.needed <= self.available

    def refusal(self) -> str:
        """The one line that refuses the replay.

        >>> print(MemoryCheck(events=34_000_000, available=20 * GB).refusal())  # doctest: +ELLIPSIS
        at least 34,000,000 events would take about ... GB in the embedded broker (... bytes per event), more than the 20.0 GB available: it keeps every event in memory; replay into Kafka (--bootstrap HOST:PORT), which honours retention
        """
        return (
            f"at least {self.events:,} events would take about {self.needed / GB:.1f} GB in the "
            f"embedded broker ({BROKER_BYTES_PER_EVENT:,} bytes per event), more than the "
            f"{self.available / GB:.1f} GB available: it keeps every event in memory; replay "
            "into Kafka (--bootstrap HOST:PORT), which honours retention"
        )
