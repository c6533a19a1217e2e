"""`mmn data profile`: counts that match the file, bounded distinct counting, bad lines."""

from __future__ import annotations

import pytest

from ops.cli import main
from simulator.errors import SourceError
from simulator.profile import profile
from simulator.synth import generate, write


def test_profile_counts_match_the_synthetic_log(tmp_path, capsys):
    log = generate(2000, seed=9)
    path = write(log, tmp_path)[0]
    result = profile(path)
    assert result.rows == 2000 and result.sales == log.columns["Sale"].count("1")
    ts = [int(v) for v in log.columns["click_timestamp"]]
    assert (result.first_ts, result.last_ts) == (min(ts), max(ts))
    by_name = {c.name: c for c in result.columns}
    assert len(by_name["product_category1"].counts) == len(set(log.columns["product_category1"]))
    assert by_name["product_age_group"].missing == log.columns["product_age_group"].count("-1")
    capped = profile(path, max_distinct=10)
    assert capped.columns[-1].capped and len(capped.columns[-1].counts) == 10
    assert main(["data", "profile", str(path), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "2,000 rows" in out and "product_country" in out


def test_profile_names_a_bad_line(tmp_path):
    path = tmp_path / "bad"
    path.write_text("0\t-1\n")
    with pytest.raises(SourceError, match="line 1"):
        profile(path)
