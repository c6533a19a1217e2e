"""`mmn bench join` end to end on a small log: every figure measured, none invented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cli import main
from streaming.broker import EmbeddedBroker


@pytest.mark.slow
@pytest.mark.broker
def test_bench_join_measures_raw_faust_floor_and_joiner(
    broker: EmbeddedBroker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "join.json"
    argv = ["bench", "join", "--rows", "1500", "--days", "1", "--bootstrap", broker.bootstrap]
    assert main([*argv, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert figures["rows"] == 1500
    # Impressions, clicks and conversions: at least one of each per click, no more than three.
    assert 2 * 1500 <= figures["events"] <= 3 * 1500
    for key in ("raw_consume_events_per_s", "faust_floor_events_per_s", "joiner_events_per_s"):
        assert figures[key] > 0, key
    assert figures["ratio_to_faust_floor"] == pytest.approx(
        figures["joiner_events_per_s"] / figures["faust_floor_events_per_s"]
    )
    assert "Faust, agent only counts" in printed and "joiner / Faust floor" in printed
