"""The CriteoSearchData reader: time order, domains, leak columns, bad lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.columns import FEATURE_FIELDS, LEAK_COLUMNS
from simulator.criteo_search import CriteoSearchConfig, SearchLog, load_columns
from simulator.errors import SourceError
from simulator.synth import generate, write

H = "0123456789ABCDEF0123456789ABCDEF"


def _line(sale=0, ts=1000, delay=-1, category=H, country=H, title=H, user="U1", fill=H) -> str:
    amount, price = ("12.5", "9.99") if sale else ("-1", "0")
    features = [fill] * 17
    features[5] = category  # product_category1
    features[12] = country  # product_country
    features[14] = title
    features[16] = user
    return "\t".join([str(sale), amount, str(delay), str(ts), "3", price, *features])


def _write(tmp_path: Path, lines: list[str], end: str = "\n") -> Path:
    path = tmp_path / "CriteoSearchData"
    path.write_text("\n".join(lines) + end)
    return path


def test_rows_come_in_time_order_stable_for_ties(tmp_path):
    path = _write(
        tmp_path,
        [_line(ts=300, user="a"), _line(ts=100, user="b"), _line(ts=300, user="c"),
         _line(ts=200, user="d", sale=1, delay=50)],
    )  # fmt: skip
    rows = list(SearchLog(path).rows())
    assert [r.impression_id for r in rows] == ["2", "4", "1", "3"]
    assert [r.user_id for r in rows] == ["b", "d", "a", "c"]
    sold = rows[1]
    assert (sold.sale, sold.click_ts, sold.conversion_ts, sold.amount) == (1, 200, 250, 12.5)
    assert rows[0].conversion_ts is None and rows[0].sale == 0 and rows[0].click_ts == 100


def test_minus_one_everywhere_and_empty_title_are_kept_raw(tmp_path):
    path = _write(
        tmp_path,
        [_line(fill="-1", category="-1", country="-1", title="-1", user="-1"), _line(title="")],
    )
    first, second = SearchLog(path).rows()
    assert set(first.features.values()) == {"-1", "3"} and first.conv_type == "-1"
    assert first.features["nb_clicks_1week"] == "3"
    assert second.features["product_title"] == ""


def test_leak_columns_never_reach_features(tmp_path):
    path = _write(tmp_path, [_line(sale=1, delay=10)])
    (row,) = SearchLog(path).rows()
    assert tuple(row.features) == FEATURE_FIELDS
    assert not set(row.features) & set(LEAK_COLUMNS)
    assert "9.99" not in row.features.values()


def test_top_k_values_become_domains_the_rest_other(tmp_path):
    lines = [_line(category="A"), _line(category="A"), _line(category="B"), _line(category="C")]
    log = SearchLog(_write(tmp_path, lines), CriteoSearchConfig(top_types=1))
    assert log.types == ("A", "other")
    assert [r.conv_type for r in log.rows()] == ["A", "A", "other", "other"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("1\t2\t3", "line 2: 3 tab-separated columns"),
        (_line().replace("\t1000\t", "\tnoon\t"), "line 2: column click_timestamp is b'noon'"),
        (_line(sale=7), "line 2: Sale is b'7'"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, [_line(), bad, _line()])
    with pytest.raises(SourceError, match=message) as info:
        SearchLog(path)
    assert str(path) in str(info.value)


def test_truncated_last_line_is_reported(tmp_path):
    full = _line()
    path = _write(tmp_path, [full, full[: len(full) // 2]], end="")
    with pytest.raises(SourceError, match="line 2: .* columns"):
        SearchLog(path)


def test_missing_click_timestamp_is_skipped_and_counted(tmp_path):
    log = SearchLog(_write(tmp_path, [_line(ts=0), _line(ts=5)]))
    assert len(log) == 1 and log.skipped == 1
    assert [r.impression_id for r in log.rows()] == ["2"]


def test_unknown_domain_column_is_refused():
    with pytest.raises(SourceError, match="product_price"):
        CriteoSearchConfig(type_field="product_price")


def test_synthetic_log_round_trip_rows_and_columns_agree(tmp_path):
    synth = generate(3000, seed=2)
    path = write(synth, tmp_path)[0]
    log = SearchLog(path)
    rows = list(log.rows())
    cols = load_columns(path)
    assert len(rows) == len(cols) == 3000 and len(log.types) == 21 and len(log.scenarios) == 17
    ts = np.array([r.click_ts for r in rows])
    assert np.all(np.diff(ts) >= 0) and np.array_equal(ts, cols.click_ts)
    assert [int(r.impression_id) for r in rows] == cols.impression_id.tolist()
    assert sum(r.sale for r in rows) == synth.columns["Sale"].count("1") == cols.sale.sum()
    assert [log.types.index(r.conv_type) for r in rows] == cols.type_index.tolist()
    assert [r.features["user_id"] for r in rows] == cols.features["user_id"].tolist()
    sold = cols.sale == 1
    assert np.all(cols.conversion_ts[sold] > cols.click_ts[sold])
    assert np.all(cols.conversion_ts[~sold] == -1)
    assert load_columns(path, rows=100).impression_id.max() <= 100


def test_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="cannot open"):
        SearchLog(tmp_path / "nope")
