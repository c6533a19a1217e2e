"""`mmn bench train --nproc N`: N data-parallel ranks against one, in one run."""

from __future__ import annotations

import json
from pathlib import Path

from ops.cli.main import main

SMALL = ["--batches", "8", "--batch-size", "32", "--hidden", "8", "--buckets", "64"]


def test_two_ranks_against_one_writes_consistent_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "figures.json"
    code = main(["bench", "train", "--nproc", "2", *SMALL, "--rounds", "2", "--json", str(out)])
    assert code == 0
    figures = json.loads(out.read_text())
    assert figures["nproc"] == 2 and figures["threads_per_rank"] == 1
    one, ranks = figures["one_rank_examples_per_s"], figures["ranks_examples_per_s"]
    assert one > 0 and ranks > 0
    assert abs(figures["scaling_efficiency"] - ranks / (2 * one)) < 1e-3
    assert len(figures["loadavg"].split()) == 3
    assert "scaling efficiency" in capsys.readouterr().out


def test_ranks_on_a_gpu_are_refused(capsys) -> None:
    assert main(["bench", "train", "--nproc", "2", *SMALL, "--device", "cuda"]) == 2
    assert "--device" in capsys.readouterr().err
