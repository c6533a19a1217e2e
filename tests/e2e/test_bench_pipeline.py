"""`mmn bench pipeline` end to end on a tiny log: every process measured, the totals add up."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ops.benches.pipeline import descendants, vm_hwm_kb
from ops.cli import main
from ops.cli.demo.plan import DemoConfig

COMPONENTS = {
    "broker",
    "join",
    "evaluate",
    "replay",
    *(f"train-{arm}" for arm in DemoConfig().arms),
}


@pytest.mark.slow
@pytest.mark.broker
def test_bench_pipeline_reports_every_process_and_totals_that_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pipeline.json"
    argv = ["bench", "pipeline", "--rows", "6000", "--out", str(tmp_path / "run")]
    assert main([*argv, "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert set(figures["components"]) == COMPONENTS
    assert figures["clicks"] == 6000
    # Impressions, clicks and conversions: two events per click, three for a converted one.
    assert 2 * 6000 < figures["events"] < 3 * 6000
    for name, component in figures["components"].items():
        assert set(component) >= {"cpu_s", "us_per_click", "rss_mb"}, name
        assert component["cpu_s"] > 0 and component["rss_mb"] > 0, name
        assert component["us_per_click"] == pytest.approx(
            component["cpu_s"] * 1e6 / figures["clicks"], abs=0.05
        ), name
    parts = figures["components"].values()
    assert figures["total_us_per_click"] == pytest.approx(sum(c["us_per_click"] for c in parts))
    assert figures["total_cpu_s"] == pytest.approx(sum(c["cpu_s"] for c in parts))
    steps = figures["model_step_us_per_example"]
    assert set(steps) == set(DemoConfig().arms) and all(us > 0 for us in steps.values())
    assert figures["model_step_us_per_click"] == pytest.approx(sum(steps.values()), abs=0.2)
    assert figures["ratio"] == pytest.approx(
        figures["total_us_per_click"] / figures["model_step_us_per_click"], abs=0.01
    )
    assert len(figures["load_average"]) == 3 and figures["load_average"][0] >= 0
    # A trainer holds a model, the replay none: the RSS is each process's own, not inherited
    # from the bench process that started it.
    components = figures["components"]
    assert components["replay"]["rss_mb"] < components[f"train-{DemoConfig().arms[0]}"]["rss_mb"]
    assert "ratio total / model step" in printed
    shutil.rmtree(tmp_path / "run")  # gigabytes of snapshots: not left to pytest's tmp dirs


def test_the_process_tree_and_its_peak_rss_are_read_from_proc() -> None:
    tree = descendants(os.getpid())
    assert tree[0] == os.getpid()
    assert vm_hwm_kb(os.getpid()) > 0
    assert vm_hwm_kb(2**22 + 1) == 0  # no such process (above the kernel's pid_max)
