"""The throughput benches run end to end at a tiny size: their figures are present, positive
and consistent with what they print (`mmn bench model`, `evaluate`, `replay`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cli import main


def bench(tmp_path: Path, *argv: str) -> dict:
    out = tmp_path / "figures.json"
    assert main(["bench", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_bench_model_measures_each_model_against_esmm(tmp_path: Path) -> None:
    figures = bench(
        tmp_path, "model", "--models", "mmn,esmm", "--steps", "2", "--requests", "20",
        "--batch-size", "256", "--threads", "1",
    )  # fmt: skip
    models = figures["models"]
    assert set(models) == {"mmn", "esmm"} and models["esmm"]["ratio_to_esmm"] == 1.0
    for m in models.values():
        assert m["train_examples_per_s"] > 0
        assert 0 < m["latency_p50_us"] <= m["latency_p99_us"]
    ratio = models["mmn"]["train_examples_per_s"] / models["esmm"]["train_examples_per_s"]
    assert models["mmn"]["ratio_to_esmm"] == pytest.approx(ratio)


def test_bench_evaluate_divides_the_evaluator_by_the_forward(tmp_path: Path) -> None:
    figures = bench(tmp_path, "evaluate", "--clicks", "2000", "--threads", "1")
    assert figures["clicks"] == 2000 and figures["forward_examples_per_s"] > 0
    one_arm = figures["evaluator_examples_per_s_one_arm"]
    assert figures["ratio"] == pytest.approx(one_arm / figures["forward_examples_per_s"])


@pytest.mark.broker
def test_bench_replay_divides_the_replay_by_raw_produce(tmp_path: Path) -> None:
    figures = bench(tmp_path, "replay", "--rows", "2000", "--rounds", "1")
    assert figures["rows"] == 2000 and figures["messages"] > figures["events"] > 0
    raw, replay = figures["raw_produce_msgs_per_s"], figures["replay_msgs_per_s"]
    assert figures["ratio"] == pytest.approx(replay / raw)
    assert figures["ratio_per_round"] == [pytest.approx(figures["ratio"])]
