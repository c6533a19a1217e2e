"""Pair effects: the synthetic log's truth is no longer additive in conversion type and scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ops.metrics import exact_auc
from simulator.synth import SynthLog, generate, write
from simulator.synth_model import SynthConfig, SynthConfigError


def _per_pair_auc(log: SynthLog, p: np.ndarray, min_rows: int = 100) -> float:
    """Mean AUC of p over the (type, scenario) pairs with min_rows rows and both classes."""
    keys = [f"{t}|{s}" for t, s in zip(log.columns["product_category1"],
                                       log.columns["product_country"], strict=True)]  # fmt: skip
    keys_arr, sale = np.asarray(keys), np.asarray(log.columns["Sale"]) == "1"
    aucs = [exact_auc(sale[keys_arr == k], p[keys_arr == k]) for k in np.unique(keys_arr)
            if (keys_arr == k).sum() >= min_rows]  # fmt: skip
    return float(np.nanmean(aucs))


def test_oracle_per_pair_auc_beats_the_additive_fit() -> None:
    # Same seed, same items and draws; only the pair terms differ (their own random stream).
    # The additive log's truth is the latent model without pair terms, its type and scenario
    # offsets refitted to the same rates: the additive fit of the paired log's domains.
    paired = generate(20_000, seed=1, config=SynthConfig(pair_effects=1.0))
    additive = generate(20_000, seed=1, config=SynthConfig(pair_effects=0.0))
    assert paired.columns["product_category1"] == additive.columns["product_category1"]
    oracle = _per_pair_auc(paired, paired.p_sale)
    fit = _per_pair_auc(paired, additive.p_sale)
    assert oracle > fit + 0.02, (oracle, fit)


def test_pair_effects_zero_gives_the_additive_log_and_default_is_nonzero() -> None:
    assert SynthConfig().pair_effects > 0
    a = generate(3_000, seed=4, config=SynthConfig(pair_effects=0.0))
    b = generate(3_000, seed=4, config=SynthConfig(pair_effects=0.0))
    c = generate(3_000, seed=4)
    assert np.array_equal(a.p_sale, b.p_sale) and not np.array_equal(a.p_sale, c.p_sale)
    assert a.columns["user_id"] == c.columns["user_id"]  # pair draws leave the rest alone


def test_truth_tsv_holds_the_true_probability(tmp_path: Path) -> None:
    log = generate(2_000, seed=5)
    write(log, tmp_path)
    table = np.loadtxt(tmp_path / "truth.tsv", delimiter="\t", skiprows=1, ndmin=2)
    np.testing.assert_allclose(table[:, 1], log.p_sale, rtol=1e-5, atol=1e-7)


def test_negative_strength_names_the_option() -> None:
    with pytest.raises(SynthConfigError, match="pair_effects"):
        SynthConfig(pair_effects=-0.1)
