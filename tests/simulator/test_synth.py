"""The synthetic generator keeps its promises: format, leak columns, rates, delays, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from ops.evaluation.offline import exact_auc
from simulator.columns import COLUMNS
from simulator.synth import generate, write
from simulator.synth_model import WINDOW_S, SynthConfig, SynthConfigError

ROWS = 60_000


@pytest.fixture(scope="module")
def log():
    return generate(ROWS, seed=11)


def test_format_is_exactly_criteo_search(log, tmp_path):
    data = write(log, tmp_path)[0]
    lines = data.read_text().split("\n")
    assert lines[-1] == "" and len(lines) == ROWS + 1
    for line in lines[:2000]:
        fields = line.split("\t")
        assert len(fields) == 23
        for name, value in zip(COLUMNS, fields, strict=True):
            if name in ("product_category1", "product_country", "product_id", "user_id"):
                assert len(value) == 32 and value == value.upper()
                int(value, 16)
            elif name == "product_title":
                assert value == "-1" or all(len(w) == 32 for w in value.split(" "))
            elif COLUMNS.index(name) >= 6:
                assert value == "-1" or (len(value) == 32 and int(value, 16) >= 0)


def test_leak_columns_follow_the_sale(log):
    sale = np.array(log.columns["Sale"]) == "1"
    price = np.array(log.columns["product_price"], dtype=float)
    amount = np.array(log.columns["SalesAmountInEuro"], dtype=float)
    delay = np.array(log.columns["time_delay_for_conversion"], dtype=int)
    assert np.array_equal(price != 0, sale)
    assert np.array_equal(amount > 0, sale) and np.all(amount[~sale] == -1)
    assert np.array_equal(delay == -1, ~sale)


def test_delays_within_the_attribution_window(log):
    delay = np.array(log.columns["time_delay_for_conversion"], dtype=int)
    sold = delay[delay >= 0]
    assert sold.min() >= 1 and sold.max() <= WINDOW_S


def test_delays_depend_on_the_conversion_type(log):
    delay = np.array(log.columns["time_delay_for_conversion"], dtype=int)
    values = np.array(log.columns["product_category1"])
    observed, configured = [], []
    for kind, _, hashes, _, _, mean_delay in log.domains:
        mask = np.isin(values, hashes.split(",")) & (delay >= 0)
        if kind == "type" and mask.sum() >= 30:
            observed.append(delay[mask].mean())
            configured.append(mean_delay)
    assert len(observed) >= 15
    assert np.corrcoef(observed, configured)[0, 1] > 0.8


def test_domain_rates_match_the_configuration(log):
    config = SynthConfig()
    sale = np.array(log.columns["Sale"]) == "1"
    for kind, column in (("type", "product_category1"), ("scenario", "product_country")):
        values = np.array(log.columns[column])
        rows = [d for d in log.domains if d[0] == kind]
        assert len(rows) == (21 if kind == "type" else 17)
        for _, _, hashes, share, rate, _ in rows:
            mask = np.isin(values, hashes.split(","))
            n = mask.sum()
            assert n == pytest.approx(share * ROWS, abs=1)
            # The truth matches the target exactly; the labels within binomial noise.
            assert log.p_sale[mask].mean() == pytest.approx(rate, rel=1e-3)
            assert abs(sale[mask].mean() - rate) < 4.5 * np.sqrt(rate * (1 - rate) / n) + 1e-9
    type_rates = [d[4] for d in log.domains if d[0] == "type"]
    assert type_rates == list(config.type_rates)
    scen = [d[4] for d in log.domains if d[0] == "scenario"]
    assert min(scen) < 0.02 and max(scen) > 0.13


def test_domain_frequencies_are_skewed_with_a_rare_tail(log):
    shares = [d[3] for d in log.domains if d[0] == "type"]
    head = shares[:-1]
    assert head[0] > 10 * head[-1]
    tail_values = [d[2] for d in log.domains if d[0] == "type"][-1].split(",")
    values = np.array(log.columns["product_category1"])
    tail_counts = [np.sum(values == v) for v in tail_values]
    assert max(tail_counts) < np.sum(values == [d[2] for d in log.domains][19])


def test_oracle_auc_is_learnable_not_trivial(log):
    sale = np.array(log.columns["Sale"]) == "1"
    assert 0.75 < exact_auc(sale, log.p_sale) < 0.87


def test_same_seed_same_log_other_seed_other_log():
    a, b, c = generate(3000, seed=5), generate(3000, seed=5), generate(3000, seed=6)
    assert a.columns == b.columns and np.array_equal(a.p_sale, b.p_sale)
    assert a.columns["user_id"] != c.columns["user_id"]


def test_timestamps_span_the_days_with_a_little_disorder(log):
    ts = np.array(log.columns["click_timestamp"], dtype=np.int64)
    config = SynthConfig()
    assert ts.min() >= config.start_ts - config.disorder_s
    assert ts.max() - ts.min() > (config.days - 1) * 86_400
    backwards = np.sum(np.diff(ts) < 0)
    assert 0 < backwards < 0.02 * ROWS


def test_full_funnel_keeps_the_log_exact_and_adds_impressions(tmp_path):
    log = generate(2000, seed=3, full_funnel=True)
    paths = write(log, tmp_path)
    funnel = log.funnel
    assert funnel is not None and funnel.clicked.sum() == 2000
    assert len(funnel.ts) > 2000 * 5
    assert np.array_equal(funnel.line[funnel.clicked], np.arange(1, 2001))
    assert (
        funnel.features["user_id"][int(np.flatnonzero(funnel.clicked)[0])]
        == log.columns["user_id"][0]
    )
    header = paths[-1].read_text().split("\n", 1)[0].split("\t")
    assert header[:5] == ["ts", "clicked", "p_click", "p_sale", "line"] and len(header) == 23


def test_synth_command_writes_the_files(tmp_path, capsys):
    from ops.cli import main

    assert main(["data", "synth", "--rows", "300", "--seed", "2", "--out", str(tmp_path)]) == 0
    assert "wrote 300 rows" in capsys.readouterr().out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".mmn-output", "CriteoSearchData", "domains.tsv", "truth.tsv"]  # + its marker
    assert len((tmp_path / "truth.tsv").read_text().splitlines()) == 301


def test_bad_configuration_is_named():
    with pytest.raises(SynthConfigError, match="delay_days"):
        SynthConfig(delay_days=(1.0,))
    with pytest.raises(SynthConfigError, match="rows"):
        generate(0, seed=1)
    with pytest.raises(SynthConfigError, match="impressions in memory"):
        generate(1_000_000, seed=1, full_funnel=True)
