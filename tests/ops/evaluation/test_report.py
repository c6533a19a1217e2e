"""Reports: every figure equals scikit-learn on the exported predictions; JSON schema; text; HTML."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from ab_stream import ARMS, evaluate
from sklearn.metrics import log_loss, roc_auc_score

from ops.evaluation.export import HEADER, export_predictions
from ops.evaluation.report import json_safe, load_report
from ops.evaluation.report_html import render_html
from ops.evaluation.report_text import format_compare, format_report


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == HEADER
        return list(reader)


def _slices(rows: list[dict[str, str]]) -> dict[tuple, tuple[list[int], list[float]]]:
    """(arm, window or None, domain) -> (labels, predictions) of the exported rows."""
    out: dict[tuple, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for r in rows:
        for window in (None, int(r["window"])):
            for domain in (
                "overall",
                ("per_type", r["conv_type"]),
                ("per_scenario", r["scenario"]),
            ):
                labels, p = out[(r["arm"], window, domain)]
                labels.append(int(r["label"]))
                p.append(float(r["prediction"]))
    return out


def _figures(report: dict, arm: str, window: int | None, domain) -> dict:
    block = report["arms"][arm]
    if window is not None:
        block = next(w for w in block["windows"] if w["window_start"] == window)
    return block["overall"] if domain == "overall" else block[domain[0]][domain[1]]


@pytest.mark.parametrize("shadow", [True, False])
def test_every_figure_equals_scikit_learn_on_the_exported_predictions(
    registry_with_snapshots, tmp_path: Path, shadow: bool
) -> None:
    evaluate(registry_with_snapshots, shadow=shadow, window_s=3_000)
    report = load_report(registry_with_snapshots, "exp")
    path = tmp_path / "predictions.csv"
    written = export_predictions(registry_with_snapshots, "exp", path)
    rows = _read_csv(path)
    assert written == len(rows) > 0
    checked = 0
    for (arm, window, domain), (labels, p) in _slices(rows).items():
        f = _figures(report, arm, window, domain)
        y, q = np.array(labels), np.array(p)
        assert f["n"] == len(y) and f["positives"] == int(y.sum())
        assert f["log_loss"] == pytest.approx(log_loss(y, q, labels=[0, 1]), abs=1e-9)
        if 0 < y.sum() < len(y):
            assert f["auc"] == pytest.approx(roc_auc_score(y, q), abs=1e-9)
            assert f["calibration"] == pytest.approx(q.sum() / y.sum(), abs=1e-9)
            checked += 1
        else:
            assert math.isnan(f["auc"])
    assert checked >= 20


def test_json_has_the_schema_of_the_issue(registry_with_snapshots, tmp_path: Path) -> None:
    evaluate(registry_with_snapshots)
    url = str(registry_with_snapshots.kw["bind"].url)
    html = tmp_path / "report.html"
    shown = subprocess.run(
        [sys.executable, "-m", "ops.cli", "report", "show", "exp", "--db", url, "--json",
         "--html", str(html)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(shown.stdout)
    assert report == json.loads(json.dumps(json_safe(load_report(registry_with_snapshots, "exp"))))
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert report["experiment"] == "exp"
    metric_keys = {
        "n": int,
        "positives": int,
        "auc": float,
        "log_loss": float,
        "calibration": float,
    }
    for arm, run in ARMS:
        block = report["arms"][arm]
        assert block["run"] == run and isinstance(block["avg_auc"], float)
        for m in (block["overall"], *block["per_type"].values(), *block["per_scenario"].values()):
            for key, kind in metric_keys.items():
                assert m[key] is None or isinstance(m[key], kind), (key, m[key])
    treatment = report["comparisons"]["treatment"]
    assert isinstance(treatment["auc_diff"], float) and isinstance(treatment["p_value"], float)
    lo, hi = treatment["ci"]
    assert lo < treatment["auc_diff"] < hi
    assert "control" not in report["comparisons"]
    assert 0 <= report["srm"]["p_value"] <= 1


def test_text_puts_the_verdict_first_and_html_fetches_nothing(registry_with_snapshots) -> None:
    evaluate(registry_with_snapshots)
    evaluate(registry_with_snapshots, experiment="exp-split", shadow=False)
    report = load_report(registry_with_snapshots, "exp")
    lines = format_report(report).splitlines()
    verdict = lines.index(next(line for line in lines if line.startswith("treatment vs control")))
    assert verdict < 12 and lines[verdict + 3].lstrip().startswith("average AUC")
    assert "sample ratio" in "\n".join(lines) and "(mismatch below 0.001): ok" in "\n".join(lines)
    assert "anytime-valid" in "\n".join(lines)
    both = format_compare(report, load_report(registry_with_snapshots, "exp-split")).splitlines()
    assert both[0] == "compare exp and exp-split"
    assert sum(line.startswith("  exp-split") for line in both[3:]) == 6  # 3 metrics x 2 scopes
    page = render_html(report)
    assert page.count('<svg class="plot"') == 5  # time, calibration, snapshots, sequence, forest
    for outside in ("http:", "https:", "src=", "@import", "url("):
        assert outside not in page
