"""ops/research/study_table.py: the study's Markdown tables from `mmn bench offline --json` files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.research.study_table import main


def cell(mmn: float, dnn: float, ci_high: float) -> dict:
    return {
        "models": {
            "mmn": {"avg_auc": mmn, "avg_auc_std": 0.001, "lr": 0.01},
            "dnn": {
                "avg_auc": dnn,
                "avg_auc_std": 0.002,
                "lr": 0.05,
                "auc_diff_vs_mmn": dnn - mmn,
                "ci": [dnn - mmn - 0.01, ci_high],
                "significant": ci_high < 0,
            },
        }
    }


def test_ranks_each_cell_and_names_the_cells_where_mmn_leads_significantly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "adagrad-tf_pair_skew.json").write_text(json.dumps(cell(0.70, 0.68, -0.005)))
    (tmp_path / "adagrad_add_unif.json").write_text(json.dumps(cell(0.66, 0.67, 0.02)))
    main(tmp_path)
    out = capsys.readouterr().out
    assert "| 1 | mmn | 0.7000 | 0.0010 |  |  | 0.01 |" in out
    assert "| 2 | dnn | 0.6800 | 0.0020 | -0.0200 | [-0.0300, -0.0050] | 0.05 |" in out
    # In the second cell dnn leads but its interval covers 0: mmn's rank is 2, dnn not starred.
    assert "| 1 (ns) | dnn | 0.6700 |" in out
    assert "| mmn | 0.7000 (rank 1) | 0.6600 (rank 2) |" in out
    assert "| dnn | -0.0200* | +0.0100 |" in out
    assert out.rstrip().endswith("interval below 0: adagrad-tf_pair_skew")
