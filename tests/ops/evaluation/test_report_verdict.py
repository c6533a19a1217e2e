"""The verdict: average-AUC difference and its interval, warm-up filtering, words, snapshots."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ab_stream import evaluate
from report_sample import sample_report, sample_snapshots, sample_table
from sqlalchemy import update

from ops.evaluation.report import load_report
from ops.evaluation.report_verdict import ReportConfig, examples_at, word
from ops.store.database import Snapshot


def test_average_auc_difference_is_the_difference_of_the_averages() -> None:
    report = sample_report()
    for comparison, scope in (
        (report["comparisons"]["mmn"], report["arms"]),
        (report["steady"]["comparisons"]["mmn"], report["steady"]["arms"]),
    ):
        arms = {a: b["avg_auc"] for a, b in scope.items()}
        assert comparison["avg_auc"]["auc_diff"] == pytest.approx(arms["mmn"] - arms["esmm"])
        lo, hi = comparison["avg_auc"]["ci"]
        assert lo < comparison["avg_auc"]["auc_diff"] < hi


def test_average_auc_interval_matches_a_paired_bootstrap() -> None:
    from ops.evaluation.report_verdict import _columns, differences, headline

    table = sample_table(clicks=4_000, days=10, seed=3)
    scored = ~np.isnan(table["prediction"])
    arm = {k: v[scored & (table["arm"] == "mmn")] for k, v in table.items()}
    control = {k: v[scored & (table["arm"] == "esmm")] for k, v in table.items()}
    se = (differences(arm, control, paired=True)["avg_auc"]["ci"][1]
          - differences(arm, control, paired=True)["avg_auc"]["auc_diff"]) / 1.959964  # fmt: skip
    rng = np.random.default_rng(0)
    draws = []
    columns = _columns(arm)
    for _ in range(200):
        i = rng.integers(0, len(arm["label"]), len(arm["label"]))
        a = {k: v[i] for k, v in arm.items()}
        c = {k: v[i] for k, v in control.items()}
        if all(len(set(a["label"][a[col] == v].tolist())) == 2 for col, v in columns):
            draws.append(headline(a)["avg_auc"] - headline(c)["avg_auc"])
    assert len(draws) > 150
    assert se == pytest.approx(float(np.std(draws)), rel=0.25)


def test_warm_up_keeps_pairs_whose_snapshots_both_learned_enough() -> None:
    report = sample_report(warmup_examples=20_000)
    table = sample_table()
    # Snapshot v serves day v and has learned 2,000 v examples: v >= 10 for both arms.
    expected = int(np.sum((table["arm"] == "esmm") & (table["snapshot_version"] >= 10)))
    assert report["steady"]["comparisons"]["mmn"]["n"] == expected
    assert report["steady"]["rule"] == {"from": None, "warmup_examples": 20_000}
    assert report["steady"]["counted"] == ["seen", "trained"]
    none = sample_report(warmup_examples=10**9)
    assert none["steady"]["comparisons"] == {"mmn": None}


def test_a_pruned_snapshot_counts_what_the_one_before_it_had() -> None:
    snapshots = [s for s in sample_snapshots()["esmm"] if s.version != 5]
    assert examples_at(snapshots, np.array([-1, 4, 5, 6])).tolist() == [-1, 8_000, 8_000, 12_000]


def test_words_at_5_percent() -> None:
    assert word({"ci": [0.01, 0.02]}) == "better"
    assert word({"ci": [-0.02, -0.01]}) == "worse"
    assert word({"ci": [-0.02, 0.01]}) == "no difference"
    assert word({"ci": [-0.02, -0.01]}, lower_is_better=True) == "better"
    assert word({"ci": [None, math.nan]}) == "no difference"


def test_registry_examples_trained_is_used_and_null_falls_back_to_examples_seen(
    registry_with_snapshots,
) -> None:
    evaluate(registry_with_snapshots)
    with registry_with_snapshots.begin() as session:
        session.execute(update(Snapshot).where(Snapshot.version == 1).values(examples_trained=0))
    report = load_report(registry_with_snapshots, "exp", ReportConfig(warmup_examples=1))
    for block in report["arms"].values():
        counted = {s["version"]: (s["counted"], s["examples"]) for s in block["snapshots"]}
        if 1 in counted:
            assert counted[1] == ("trained", 0)
        assert all(c == "seen" for v, (c, _) in counted.items() if v != 1)
    # v1's clicks learned from 0 trained examples: not after warm-up, whatever was seen.
    with registry_with_snapshots() as session:
        from ops.store.experiments import predictions

        table = predictions(session, "exp")
    later = (table["arm"] == "control") & (table["snapshot_version"] > 1)
    both = set(table["impression_id"][later].tolist()) & set(
        table["impression_id"][
            (table["arm"] == "treatment") & (table["snapshot_version"] > 1)
        ].tolist()
    )
    assert report["steady"]["comparisons"]["treatment"]["n"] == len(both)
