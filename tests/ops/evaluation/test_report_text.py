"""The text report of a demo-sized experiment: width, verdict first, one row per domain, legend."""

from __future__ import annotations

import re

from report_sample import sample_report

from ops.evaluation.report_labels import MIN_PREFIX
from ops.evaluation.report_text import format_compare, format_report


def test_fits_100_columns_and_names_the_verdict_with_its_interval_in_12_lines() -> None:
    report = sample_report()
    lines = format_report(report).splitlines()
    assert max(map(len, lines)) <= 100
    head = "\n".join(lines[:12])
    assert re.search(r"mmn vs esmm, paper's average AUC: (better|worse|no difference)", head)
    assert re.search(
        r"average AUC .* \[[-+]\d\.\d{4}, [-+]\d\.\d{4}\] .*(better|worse|no diff)", head
    )
    assert lines[0].startswith("experiment demo: finished")
    assert "model mmn_dw_clip" in lines[2]


def test_one_row_per_domain_with_unique_prefixes_and_full_values_in_the_legend() -> None:
    report = sample_report()
    text = format_report(report)
    lines = text.splitlines()
    types = report["arms"]["esmm"]["per_type"]
    scens = report["arms"]["esmm"]["per_scenario"]
    start = lines.index(next(x for x in lines if x.startswith("conversion type ")))
    middle = lines.index(next(x for x in lines if x.startswith("display scenario ")))
    assert middle - start - 1 == len(types)
    type_labels = [row.split()[0] if not row.startswith("other") else row[:10] for row in
                   lines[start + 1 : middle]]  # fmt: skip
    assert "other type" in type_labels and len(set(type_labels)) == len(types)
    assert lines[middle + 1 + len(scens) - 1].startswith("other scenario")
    for value in types:
        if value != "other":
            label = next(x for x in type_labels if value.startswith(x))
            assert len(label) >= MIN_PREFIX and f"{label}  {value}" in text  # legend
    # A wider terminal shows the full values and needs no legend.
    wide = format_report(report, width=140)
    assert max(map(len, wide.splitlines())) <= 140
    assert "domain values in full" not in wide and next(iter(types)) in wide


def test_steady_state_rule_and_its_fallback_are_stated() -> None:
    text = format_report(sample_report(warmup_examples=20_000))
    assert "snapshots trained on >= 20,000 examples" in text
    assert "examples seen" in text  # half the sample's snapshots have no trained count
    dated = format_report(sample_report(from_ts=1_600_000_000 + 86_400 * 10))
    assert "clicks from 2020-09-23T12:26:40Z on" in dated


def test_compare_fits_the_width() -> None:
    a, b = sample_report(), sample_report(warmup_examples=40_000)
    lines = format_compare(a, b).splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("average AUC, after warm-up") for line in lines)
