"""The embedded broker's memory estimate, the memory available, and how it is told from Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from streaming.broker import EmbeddedBroker, is_embedded
from streaming.broker_memory import (
    BROKER_BASE_BYTES,
    BROKER_BYTES_PER_EVENT,
    GB,
    MemoryCheck,
    available_bytes,
    estimate_bytes,
)
from streaming.errors import BrokerError


def test_the_estimate_grows_with_the_events_from_a_measured_base() -> None:
    assert BROKER_BASE_BYTES > 0 and BROKER_BYTES_PER_EVENT > 0
    assert estimate_bytes(0) == BROKER_BASE_BYTES
    assert (
        estimate_bytes(2_000_000) - estimate_bytes(1_000_000) == 1_000_000 * BROKER_BYTES_PER_EVENT
    )


def test_a_replay_fits_up_to_the_memory_available_and_no_further() -> None:
    events = 1_000_000
    needed = estimate_bytes(events)
    assert MemoryCheck(events=events, available=needed).fits
    refused = MemoryCheck(events=events, available=needed - 1)
    assert not refused.fits
    line = refused.refusal()
    assert "\n" not in line and f"{events:,} events" in line and "Kafka" in line
    assert f"{needed / GB:.1f} GB" in line


def test_available_memory_is_read_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12345 kB\n")
    assert available_bytes(meminfo) == 12345 * 1024
    meminfo.write_text("MemTotal:       24000000 kB\n")
    with pytest.raises(BrokerError, match="no MemAvailable"):
        available_bytes(meminfo)
    assert available_bytes() > 0  # this machine's


@pytest.mark.broker
def test_the_embedded_broker_is_told_by_its_cluster_id(broker: EmbeddedBroker) -> None:
    assert is_embedded(broker.bootstrap)
