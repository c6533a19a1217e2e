"""Paired bootstrap intervals of Table 3 differences, on cases with known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops.evaluation.intervals import average_auc, paired_intervals, weighted_auc
from ops.metrics import exact_auc
from simulator.columns import COLUMNS
from simulator.synth import generate, write


def test_weighted_auc_equals_the_exact_auc_of_the_repeated_rows() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    s = rng.integers(0, 15, 200).astype(float)  # ties
    w = rng.poisson(1.0, size=(5, 200))
    got = weighted_auc(y, s, w)
    for r in range(5):
        want = exact_auc(np.repeat(y, w[r]), np.repeat(s, w[r]))
        assert got[r] == pytest.approx(want, rel=1e-12)


def _case(n: int = 3000, seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(float)
    domain = rng.integers(0, 3, n)
    return y, [domain == d for d in range(3)]


def test_a_perfect_model_beats_a_constant_one_by_exactly_one_half() -> None:
    y, domains = _case()
    perfect, constant = y.copy(), np.zeros_like(y)
    out = paired_intervals(
        y, {"mmn": [constant, constant], "oracle": [perfect]}, domains, "mmn", replicates=200
    )
    # AUC 1 against AUC 0.5 in every domain of every resample: the difference is 0.5 exactly.
    assert out["oracle"]["auc_diff_vs_mmn"] == pytest.approx(0.5)
    assert out["oracle"]["ci"] == pytest.approx([0.5, 0.5])
    assert out["oracle"]["significant"]
    assert out["mmn"]["ci"] == [0.0, 0.0] and not out["mmn"]["significant"]


def test_a_monotone_transform_of_the_reference_has_a_zero_interval() -> None:
    y, domains = _case()
    s = np.random.default_rng(2).random(len(y)) + y * 0.3
    out = paired_intervals(y, {"mmn": [s], "same": [np.exp(3 * s)]}, domains, "mmn", replicates=100)
    assert out["same"]["ci"] == pytest.approx([0.0, 0.0]) and not out["same"]["significant"]


def test_interval_matches_the_normal_theory_width_for_independent_scorers() -> None:
    # Two scorers with the same true AUC, independent noise: the difference is 0 in truth, and
    # a 95% interval of a difference of two AUCs of this size is about +-2 * sqrt(2) * se.
    y, domains = _case(n=6000, seed=3)
    rng = np.random.default_rng(4)
    a = y + rng.normal(0, 1, len(y))
    b = y + rng.normal(0, 1, len(y))
    out = paired_intervals(y, {"mmn": [a], "b": [b]}, domains, "mmn", replicates=400)
    lo, hi = out["b"]["ci"]
    assert lo < out["b"]["auc_diff_vs_mmn"] < hi
    # Hanley-McNeil se of one AUC ~0.76 with 400 positives and 1600 negatives per domain,
    # averaged over 3 independent domains: se/sqrt(3); two independent scorers: * sqrt(2).
    auc, p, q = 0.76, 400, 1600
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (p - 1) * (q1 - auc**2) + (q - 1) * (q2 - auc**2)) / (p * q))
    width = 2 * 1.96 * se * np.sqrt(2) / np.sqrt(3)
    assert 0.7 * width < hi - lo < 1.3 * width


def test_seed_spread_widens_the_interval() -> None:
    y, domains = _case()
    rng = np.random.default_rng(5)
    base = y + rng.normal(0, 1, len(y))
    noisy = [y + rng.normal(0, s, len(y)) for s in (0.5, 2.0)]  # two very different seeds
    steady = [base, base]
    one = paired_intervals(y, {"mmn": steady, "m": [noisy[0]] * 2}, domains, "mmn", replicates=200)
    two = paired_intervals(y, {"mmn": steady, "m": noisy}, domains, "mmn", replicates=200)
    assert np.diff(two["m"]["ci"])[0] > 2 * np.diff(one["m"]["ci"])[0]


def test_average_auc_skips_domains_with_one_class() -> None:
    y = np.array([0, 1, 0, 1, 0, 0.0])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.6])
    masks = [np.array([1, 1, 1, 1, 0, 0], bool), np.array([0, 0, 0, 0, 1, 1], bool)]
    assert average_auc(y, s, masks, np.ones((1, 6))).tolist() == [1.0]


def test_bench_offline_json_has_each_models_interval_against_mmn(tmp_path: Path) -> None:
    write(generate(3_000, seed=6), tmp_path)
    out = tmp_path / "offline.json"
    cmd = [sys.executable, "-m", "ops.cli", "bench", "offline"]
    cmd += ["--data", str(tmp_path / "CriteoSearchData"), "--models", "mmn,mmn_dw_norm,esmm"]
    cmd += ["--seeds", "2", "--batch-size", "512", "--optimizer", "adagrad-tf", "--lr", "0.05"]
    cmd += ["--hidden", "8,4", "--buckets", "256", "--replicates", "50", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["config"]["optimizer"] == "adagrad-tf"
    for name, figures in result["models"].items():
        lo, hi = figures["ci"]
        assert lo <= hi and isinstance(figures["significant"], bool)
        want = figures["avg_auc"] - result["models"]["mmn"]["avg_auc"]
        assert figures["auc_diff_vs_mmn"] == pytest.approx(want, abs=1e-9), name
    assert result["models"]["mmn"]["ci"] == [0.0, 0.0]
    assert "95% CI" in done.stdout


def test_bench_offline_rejects_an_unknown_optimizer(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "ops.cli", "bench", "offline", "--data", str(tmp_path / "x")]
    done = subprocess.run(cmd + ["--optimizer", "rmsprop"], capture_output=True, text=True)
    assert done.returncode == 2 and "--optimizer" in done.stderr


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=40).flatmap(
        lambda n: st.tuples(
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.integers(0, 5), min_size=n, max_size=n),  # ties
            st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=1, max_size=5),
        )
    )
)
def test_average_auc_over_random_masks_is_the_mean_of_the_defined_domains(case) -> None:
    labels, scores = (np.array(x, dtype=float) for x in case[:2])
    masks = [np.array(m, dtype=bool) for m in case[2]]  # empty ones included
    got = average_auc(labels, scores, masks, np.ones((1, len(labels))))
    aucs = [exact_auc(labels[m], scores[m]) for m in masks]
    defined = [a for a in aucs if not math.isnan(a)]
    if defined:
        assert got[0] == pytest.approx(np.mean(defined), rel=1e-12)
    else:
        assert math.isnan(got[0])
    for m in masks:
        assert weighted_auc(labels[m], scores[m], np.ones((3, int(m.sum())))).shape == (3,)


def _drop_a_type_from_the_test_split(data: Path) -> str:
    """Rewrite the log so that its most frequent conversion type has no test rows; that type."""
    rows = [line.split("\t") for line in data.read_text().splitlines()]
    time_col, type_col = COLUMNS.index("click_timestamp"), COLUMNS.index("product_category1")
    rows.sort(key=lambda r: int(r[time_col]))
    cut = int(len(rows) * 0.7)
    counts = Counter(r[type_col] for r in rows[:cut]).most_common(2)
    (gone, _), (other, _) = counts
    for r in rows[cut - 50 :]:  # a margin: the split need not cut exactly here
        if r[type_col] == gone:
            r[type_col] = other
    data.write_text("".join("\t".join(r) + "\n" for r in rows))
    return gone


def test_bench_offline_runs_on_a_log_with_a_domain_absent_from_the_test_split(tmp_path) -> None:
    write(generate(3_000, seed=6), tmp_path)
    _drop_a_type_from_the_test_split(tmp_path / "CriteoSearchData")
    out = tmp_path / "offline.json"
    cmd = [sys.executable, "-m", "ops.cli", "bench", "offline"]
    cmd += ["--data", str(tmp_path / "CriteoSearchData"), "--models", "mmn,esmm"]
    cmd += ["--seeds", "1", "--batch-size", "512", "--lr", "0.05", "--hidden", "8,4"]
    cmd += ["--buckets", "256", "--replicates", "20", "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    per_type = json.loads(out.read_text())["models"]["mmn"]["per_type"]
    assert any(math.isnan(v) for v in per_type.values()), per_type  # a column with no figure
