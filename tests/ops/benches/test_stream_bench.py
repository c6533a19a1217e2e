"""`mmn bench stream`: the streaming protocol end to end on a small synthetic log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.cli import main
from ops.research.relative_improvement import relative_improvements
from ops.research.stream_protocol import StreamConfig, emit, run_stream
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
        lead = result["models"][model]["oracle_lead"]
        lo, hi = lead["interval"]
        assert lo <= lead["auc"] <= hi and lead["significant"] == (lo > 0)
        if lead["significant"]:
            assert methods["vanilla"]["ri_auc"] == 0 and methods["oracle"]["ri_auc"] == 1
        else:
            assert all(f["ri_auc"] is None for f in methods.values())
        frozen = result["models"][model]["frozen"]
        assert 0 < frozen["auc"] < 1 and len(frozen["per_day_auc"]) == 3
        # Within 4 days of a 30-day attribution window, wait learns nothing yet and DEFER's
        # second copies (at click + A) have not come: it learns what vanilla learns.
        assert methods["wait"]["trained_rows"] == 0 < methods["oracle"]["trained_rows"]
        assert methods["defer"]["trained_rows"] == methods["vanilla"]["trained_rows"]


def test_ri_auc_only_where_the_oracle_lead_is_significant() -> None:
    def methods(oracle: list[float]) -> dict:
        days = {"vanilla": [0.70, 0.71, 0.69, 0.70, 0.72], "oracle": oracle,
                "fnw": [0.705, 0.715, 0.695, 0.705, 0.725]}  # fmt: skip
        return {
            name: {"auc": sum(d) / len(d), "per_day_auc": d, "log_loss": 0.3 + 0.01 * i}
            for i, (name, d) in enumerate(days.items())
        }

    ahead, lead = relative_improvements(methods([0.71, 0.72, 0.70, 0.71, 0.73]))
    assert lead["significant"] and lead["interval"][0] > 0
    assert ahead["fnw"]["ri_auc"] == pytest.approx(0.5)
    lo, hi = ahead["fnw"]["ri_auc_interval"]
    assert lo <= 0.5 <= hi
    # The oracle ahead on some days and behind on others: no RI-AUC, and the lead says so.
    noise, lead = relative_improvements(methods([0.72, 0.70, 0.70, 0.69, 0.74]))
    assert not lead["significant"] and lead["interval"][0] < 0 < lead["interval"][1]
    assert all(f["ri_auc"] is None and f["ri_auc_interval"] is None for f in noise.values())
    assert noise["fnw"]["ri_log_loss"] == pytest.approx(2.0)  # (0.32 - 0.30) / (0.31 - 0.30)


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
