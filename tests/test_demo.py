"""`mmn demo` runs the whole pipeline on a small log: replay, join, train, score."""

from __future__ import annotations

import re

import pytest

from ops.cli import main


@pytest.mark.broker
@pytest.mark.slow
def test_demo_runs_end_to_end_and_scores_the_held_out_days(tmp_path, capsys):
    assert main(["demo", "--rows", "6000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "every topic matches the file" in out
    served = re.search(r"serving snapshot v(\d+) \(watermark ", out)
    assert served, out
    assert (tmp_path / "snapshots" / "demo-mmn" / f"v{int(served[1]):06d}.pt").exists()
    auc = re.search(r"MMN \(online, v\d+\)\s+([0-9.]+)", out)
    oracle = re.search(r"oracle \(true p\)\s+([0-9.]+)", out)
    assert auc and oracle, out
    # A tiny log learns little (0.60 on these 996 held-out clicks, 99 conversions: about three
    # standard errors above chance), but the scores must rank better than chance, and no
    # better than the true probabilities.
    assert 0.5 < float(auc[1]) <= float(oracle[1])
