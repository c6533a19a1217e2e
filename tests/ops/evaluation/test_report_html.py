"""The HTML report in a real browser: nothing overlaps, nothing scrolls sideways, every plot drawn.

Debian's `chromium` (`.ci/run` installs it when missing) driven by Playwright for Python
with `executable_path` pointing at it: Playwright's own browser builds are never
downloaded. The page is the report of a demo-sized sample (tests/report_sample.py: 38
hashed domains, daily windows, two drift points an hour apart) and of the small A/B stream
that the evaluator really scored; the rendered DOM is measured at 1280 px: text boxes in
every plot (none overlapping another, none over the plot area, none cut by the plot's
edge), horizontal scrolling of the page and of every element, data marks per plot, rows
of the arms and per-domain tables, console errors. The screenshot is kept in the test's
tmp folder and, when MMN_REPORT_SCREENSHOT names a path, written there too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from ab_stream import evaluate
from report_sample import sample_report

from ops.evaluation.report import load_report
from ops.evaluation.report_html import render_html

playwright = pytest.importorskip("playwright.sync_api", reason="playwright (dev extras) is missing")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_ENV = "MMN_REPORT_SCREENSHOT"

# Text boxes closer than this are taken as touching (sub-pixel rounding of glyph boxes).
SLACK = 0.5
MEASURE = """(slack) => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {l: r.left, t: r.top, r: r.right, b: r.bottom, w: r.width}; };
  const meets = (a, b, s) => a.l < b.r - s && b.l < a.r - s && a.t < b.b - s && b.t < a.b - s;
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
    const edge = box(svg);
    const frame = svg.querySelector('rect[fill="none"]');
    const area = frame ? box(frame) : null;
    const texts = [...svg.querySelectorAll('text')]
      .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
      .map(t => ({text: t.textContent.trim(), ...box(t)}));
    const overlaps = [];
    for (let i = 0; i < texts.length; i++)
      for (let j = i + 1; j < texts.length; j++)
        if (meets(texts[i], texts[j], slack)) overlaps.push([texts[i].text, texts[j].text]);
    return {
      title: svg.getAttribute('aria-label') || (texts[0] || {}).text,
      overlaps,
      over_area: area ? texts.filter(t => meets(t, area, slack)).map(t => t.text) : [],
      clipped: texts.filter(t => t.l < edge.l - slack || t.r > edge.r + slack
                              || t.t < edge.t - slack || t.b > edge.b + slack)
                    .map(t => t.text),
      marks: svg.querySelectorAll('circle,polyline,polygon,path').length,
    };
  });
  const scrolling = [...document.querySelectorAll('*')]
    .filter(e => e.scrollWidth > e.clientWidth + 1
                 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))
    .map(e => e.tagName);
  const rows = name => [...document.querySelectorAll(`table[data-table="${name}"]`)]
    .map(t => t.querySelectorAll('tbody tr').length);
  return {
    plots, scrolling,
    page_width: document.documentElement.scrollWidth, view_width: window.innerWidth,
    arms_rows: rows('arms'), domain_rows: rows('domains'),
    first_heading: (document.querySelector('h1, h2') || {}).textContent,
  };
}"""


def _render(page_html: Path, screenshot: Path) -> tuple[dict[str, Any], list[str]]:
    """The measured DOM of the page at 1280 px, and the console errors and page errors."""
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_html.as_uri(), wait_until="load")
            measured = page.evaluate(MEASURE, SLACK)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return measured, errors


def _check(report: dict[str, Any], tmp_path: Path, name: str) -> dict[str, Any]:
    page = tmp_path / f"{name}.html"
    page.write_text(render_html(report), encoding="utf-8")
    screenshot = tmp_path / f"{name}.png"
    measured, errors = _render(page, screenshot)
    print(f"screenshot: {screenshot}")
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(screenshot, os.environ[SCREENSHOT_ENV])
    assert errors == []
    assert measured["page_width"] <= measured["view_width"], measured["page_width"]
    assert measured["scrolling"] == []
    assert len(measured["plots"]) >= 4
    for plot in measured["plots"]:
        assert plot["overlaps"] == [], plot
        assert plot["over_area"] == [], plot
        assert plot["clipped"] == [], plot
        assert plot["marks"] > 0, plot
    arms = len(report["arms"])
    domains = sum(len(report["arms"][report["control"]][k]) for k in ("per_type", "per_scenario"))
    assert measured["arms_rows"] == [arms]
    assert measured["domain_rows"] == [domains] * len(report["comparisons"])
    assert screenshot.stat().st_size > 10_000
    return measured


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_of_a_demo_sized_experiment_reads_cleanly_in_chromium(tmp_path: Path) -> None:
    measured = _check(sample_report(), tmp_path, "sample")
    assert "better" in measured["first_heading"] or "no difference" in measured["first_heading"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_report_of_a_scored_stream_reads_cleanly_in_chromium(
    registry_with_snapshots, tmp_path: Path
) -> None:
    evaluate(registry_with_snapshots, window_s=3_000)
    _check(load_report(registry_with_snapshots, "exp"), tmp_path, "stream")
