"""The attribution-file source: header, funnel, time order (gzip, unsorted), outcomes not features."""

from __future__ import annotations

import gzip

import pytest

from simulator.criteo_attribution import COLUMNS, AttributionConfig, AttributionLog
from simulator.errors import SourceError
from simulator.sources import open_source


def _row(ts, uid, click=0, attribution=0, conv_ts=-1, campaign="c1", cat1="k1") -> str:
    values = {
        "timestamp": ts, "uid": uid, "campaign": campaign, "conversion": attribution,
        "conversion_timestamp": conv_ts, "conversion_id": -1, "attribution": attribution,
        "click": click, "click_pos": -1, "click_nb": -1, "cost": 0.0001, "cpo": 0.3,
        "time_since_last_click": -1, "cat1": cat1,
    }  # fmt: skip
    return "\t".join(str(values.get(name, "x")) for name in COLUMNS)


def _write(path, rows, *, gz=False):
    text = "\n".join(["\t".join(COLUMNS), *rows]) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_funnel_in_time_order(tmp_path, gz):
    rows = [
        _row(50, "u1", click=1, attribution=1, conv_ts=90),
        _row(10, "u2"),
        _row(50, "u3", click=1),
        _row(30, "u4", attribution=1, conv_ts=40),  # converted without a click: no conversion
    ]
    path = _write(tmp_path / ("a.tsv.gz" if gz else "a.tsv"), rows, gz=gz)
    log = AttributionLog(path)
    records = list(log.rows())
    assert [r.impression_id for r in records] == ["3", "5", "2", "4"]
    assert [r.ts for r in records] == [10, 30, 50, 50]
    assert [r.click_ts for r in records] == [None, None, 50, 50]
    assert [r.conversion_ts for r in records] == [None, None, 90, None]
    assert [r.sale for r in records] == [0, 0, 1, 0]
    assert set(records[0].features) == {
        "campaign",
        *(f"cat{i}" for i in range(1, 10)),
        "time_since_last_click",
    }
    assert records[0].conv_type == "k1" and records[0].scenario == "c1"


def test_sorted_file_is_streamed(tmp_path):
    path = _write(tmp_path / "s.tsv", [_row(1, "a"), _row(2, "b", campaign="c2")])
    log = AttributionLog(path, AttributionConfig(top_scenarios=1))
    assert log.scenarios in (("c1", "other"), ("c2", "other"))
    assert [r.user_id for r in log.rows()] == ["a", "b"]


def test_bad_header_and_bad_line_are_named(tmp_path):
    bad_header = tmp_path / "h.tsv"
    bad_header.write_text("a\tb\n1\t2\n")
    with pytest.raises(SourceError, match="line 1: header"):
        AttributionLog(bad_header)
    path = _write(tmp_path / "b.tsv", [_row(1, "a"), _row("soon", "b")])
    with pytest.raises(SourceError, match="line 3: column timestamp"):
        AttributionLog(path)


def test_open_source_picks_the_attribution_reader(tmp_path):
    path = _write(tmp_path / "o.tsv", [_row(1, "a", cat1="z")])
    source = open_source("criteo-attribution", path, type_field="cat1")
    assert len(source) == 1 and source.types == ("z", "other")
