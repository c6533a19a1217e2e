"""`mmn demo` runs end to end on a small log and checks its counts."""

from __future__ import annotations

import pytest

from ops.cli import main


@pytest.mark.broker
def test_demo_reads_back_what_it_replayed(tmp_path, capsys):
    assert main(["demo", "--rows", "1500", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "every topic matches the file" in out
    assert "impressions:    1,500 read back,    1,500 in the file" in out
