"""The offline experiment's pieces: exact AUC, the Table 3 layout, and a tiny end-to-end run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from model.batch import Batch
from ops.cli import main
from ops.evaluation.offline import (
    OfflineConfig,
    OfflineData,
    offline_data,
    run_offline,
    tune_lr,
)
from ops.evaluation.table import format_table
from simulator.criteo_search import CriteoSearchConfig, load_columns
from simulator.synth import generate, truth_of, write


def test_tiny_run_reports_every_domain_and_the_oracle(tmp_path: Path) -> None:
    write(generate(3_000, seed=2), tmp_path)
    config = OfflineConfig(
        models=("esmm", "mmn"), seeds=1, batch_size=512, buckets=256, hidden=(8, 4)
    )
    data = _load(tmp_path / "CriteoSearchData", config)
    assert data.p_true is not None and not np.isnan(data.p_true).any()
    result = run_offline(data, config, log=lambda _: None)
    mmn = result["models"]["mmn"]
    assert set(mmn["per_type"]) == {"t_other", "t1", "t2", "t3"}
    assert set(mmn["per_scenario"]) == {"s_other", "s1", "s2"}
    assert mmn["param_sets"] == 4 + 3 + 1 and mmn["datasets"] == 1
    assert 0.5 < result["oracle"]["avg_auc"] <= 1.0
    table = format_table(result)
    assert table.splitlines()[0].startswith("model\tt_other") and "oracle (truth)" in table


def test_avg_skips_domains_with_one_class() -> None:
    from ops.evaluation.offline import table3

    batch = Batch.of(
        torch.zeros(6, 1, dtype=torch.long),
        torch.tensor([0, 0, 1, 1, 1, 1]),
        torch.tensor([0, 0, 0, 0, 0, 0]),
        conversion=torch.tensor([0.0, 0, 1, 0, 1, 0]),
    )
    data = OfflineData(batch=batch, type_names=("o", "a"), scenario_names=("o",))
    result = table3(np.array([0.1, 0.2, 0.9, 0.1, 0.8, 0.3]), batch, data)
    assert math.isnan(result["per_type"]["t_other"])
    assert result["per_type"]["t1"] == 1.0 and result["avg_auc"] == 1.0


def test_lr_grid_keeps_the_rate_that_validates_best(tmp_path: Path) -> None:
    write(generate(20_000, seed=3), tmp_path)
    config = OfflineConfig(
        models=("esmm",),
        seeds=1,
        batch_size=256,
        buckets=256,
        hidden=(8, 4),
        lr_grid=(1e-9, 0.1),
    )
    data = _load(tmp_path / "CriteoSearchData", config)
    lr, scores = tune_lr("esmm", data, config, log=lambda _: None)
    # A rate of 1e-9 leaves the initial weights: validation AUC near 0.5, far below 0.1's.
    assert set(scores) == {"1e-09", "0.1"}
    assert scores["0.1"] > scores["1e-09"] + 0.05
    assert lr == 0.1
    result = run_offline(data, config, log=lambda _: None)
    assert result["models"]["esmm"]["lr"] == 0.1
    assert result["models"]["esmm"]["validation_avg_auc"] == scores
    assert format_table(result).splitlines()[1].endswith("\t0.1")


@pytest.mark.parametrize(
    "truth",
    ["a\tb\tc\n1\t2\t3\n", "line\tp_sale\n1\t0.1\n", "line\tp_sale\n1\tnot a number\n"],
    ids=["foreign layout", "fewer lines", "not numbers"],
)
def test_bench_offline_with_a_foreign_truth_file_is_one_line(tmp_path, capsys, truth) -> None:
    write(generate(300, seed=1), tmp_path)
    (tmp_path / "truth.tsv").write_text(truth)
    argv = ["bench", "offline", "--data", str(tmp_path / "CriteoSearchData"), "--models", "dnn"]
    assert main([*argv, "--epochs", "1", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truth.tsv" in err and "Traceback" not in err


def _load(log: Path, config: OfflineConfig) -> OfflineData:
    cols = load_columns(log, CriteoSearchConfig(top_types=3, top_scenarios=2))
    return offline_data(cols, config, p_true=truth_of(log, cols.impression_id))
