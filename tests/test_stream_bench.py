"""`mmn bench stream`: the streaming protocol end to end on a small synthetic log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.benches.stream_protocol import StreamConfig, emit, run_stream
from ops.cli import main
from ops.training import delayed
from simulator.criteo_search import CriteoSearchConfig, load_columns
from simulator.synth import generate, write


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write(generate(12_000, seed=2), out)
    return out / "CriteoSearchData"


def test_every_method_is_scored_with_vanilla_at_0_and_the_oracle_at_1(log: Path) -> None:
    cols = load_columns(log, CriteoSearchConfig())
    config = StreamConfig(pretrain_days=20, days=3, hidden=(8,), buckets=256, batch_size=256)
    result = run_stream(cols, config, log=lambda _: None)
    assert result["days_scored"] == 3
    for model in ("esmm", "mmn"):
        methods = result["models"][model]["methods"]
        assert list(methods) == list(delayed.names())
        for figures in methods.values():
            assert {"auc", "pr_auc", "log_loss", "calibration", "ri_auc"} <= set(figures)
            assert 0 < figures["auc"] < 1 and len(figures["per_day_auc"]) == 3
        assert methods["vanilla"]["ri_auc"] == 0 and methods["oracle"]["ri_auc"] == 1
        # Within 4 days of a 30-day attribution window, wait learns nothing yet and DEFER's
        # second copies (at click + A) have not come: it learns what vanilla learns.
        assert methods["wait"]["trained_rows"] == 0 < methods["oracle"]["trained_rows"]
        assert methods["defer"]["trained_rows"] == methods["vanilla"]["trained_rows"]


def test_emission_is_in_label_time_order_and_follows_the_method(log: Path) -> None:
    cols = load_columns(log, CriteoSearchConfig())
    rows = cols.click_ts.argsort()[:500]
    labels = StreamConfig().labels()
    for method in delayed.names():
        out = emit(cols, rows, method, labels)
        assert (out.label_ts[1:] >= out.label_ts[:-1]).all()
    oracle = emit(cols, rows, "oracle", labels)
    assert (oracle.label_ts == cols.click_ts[oracle.row]).all()
    assert (oracle.conversion == cols.sale[oracle.row]).all()


def test_the_json_has_the_issue_schema_and_bad_input_exits_2(log: Path, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    argv = ["bench", "stream", "--data", str(log), "--models", "esmm", "--methods",
            "vanilla,oracle", "--pretrain-days", "20", "--days", "2", "--hidden", "8",
            "--buckets", "256", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(out.read_text())["models"]["esmm"]["methods"]["oracle"]
    assert {"auc", "pr_auc", "log_loss", "calibration", "ri_auc"} <= set(figures)
    assert main(["bench", "stream", "--data", str(log), "--methods", "plain"]) == 2
