"""Small inline SVG charts (lines, bands, points, error bars) for the self-contained HTML report.

No plotting library and nothing fetched: a chart is a string of SVG elements in data
coordinates mapped onto a fixed pixel box, with ticks on both axes.

>>> chart = Chart(x=(0, 10), y=(0, 1), title="t")
>>> chart.line([0, 10], [0, 1], color="#1f77b4")
>>> svg = chart.render()
>>> svg.startswith("<svg") and "polyline" in svg
True
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 45


def finite_range(values: Sequence[float], pad: float = 0.05) -> tuple[float, float]:
    """(lo, hi) of the finite values, padded; (0, 1) when there are none.

    >>> finite_range([1.0, float("nan"), 3.0], pad=0)
    (1.0, 3.0)
    """
    ok = [v for v in values if v is not None and math.isfinite(v)]
    if not ok:
        return (0.0, 1.0)
    lo, hi = min(ok), max(ok)
    span = (hi - lo) or abs(hi) or 1.0
    return (lo - pad * span, hi + pad * span)


class Chart:
    """One chart: axes ranges, a title and axis labels; elements are added in data coordinates."""

    def __init__(
        self,
        *,
        x: tuple[float, float],
        y: tuple[float, float],
        title: str,
        xlabel: str = "",
        ylabel: str = "",
        xfmt: Callable[[float], str] = lambda v: f"{v:.3g}",
        height: int = HEIGHT,
        yticks: bool = True,
    ) -> None:
        self.x, self.y, self.height, self.yticks = x, y, height, yticks
        self.title, self.xlabel, self.ylabel, self.xfmt = title, xlabel, ylabel, xfmt
        self.parts: list[str] = []
        self.legend: list[tuple[str, str]] = []

    def px(self, v: float) -> float:
        lo, hi = self.x
        return LEFT + (v - lo) / ((hi - lo) or 1.0) * (WIDTH - LEFT - RIGHT)

    def py(self, v: float) -> float:
        lo, hi = self.y
        return self.height - BOTTOM - (v - lo) / ((hi - lo) or 1.0) * (self.height - TOP - BOTTOM)

    def _points(self, xs: Sequence[float], ys: Sequence[float | None]) -> list[tuple[float, float]]:
        return [
            (self.px(a), self.py(b))
            for a, b in zip(xs, ys, strict=True)
            if b is not None and math.isfinite(a) and math.isfinite(b)
        ]

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        *,
        color: str,
        label: str = "",
        dash: str = "",
    ) -> None:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in self._points(xs, ys))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2"{style} points="{pts}"/>'
        )
        if label:
            self.legend.append((color, label))

    def band(
        self, xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], *, color: str
    ) -> None:
        upper = self._points(xs, [self._clip(v) for v in hi])
        lower = self._points(xs, [self._clip(v) for v in lo])
        if not upper or not lower:
            return
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in [*upper, *reversed(lower)])
        self.parts.append(
            f'<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{pts}"/>'
        )

    def _clip(self, v: float | None) -> float | None:
        # An infinite bound (no interval yet) is drawn at the edge of the chart.
        if v is None or math.isnan(v):
            return None
        return min(max(v, self.y[0]), self.y[1])

    def points(
        self, xs: Sequence[float], ys: Sequence[float], *, color: str, label: str = ""
    ) -> None:
        for a, b in self._points(xs, ys):
            self.parts.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="4" fill="{color}"/>')
        if label:
            self.legend.append((color, label))

    def error_bar_h(self, y: float, lo: float, hi: float, mid: float, *, color: str) -> None:
        """A horizontal interval [lo, hi] at height y with its estimate mid (forest plots)."""
        if not all(math.isfinite(v) for v in (lo, hi, mid)):
            return
        py = self.py(y)
        self.parts.append(
            f'<line x1="{self.px(lo):.1f}" x2="{self.px(hi):.1f}" y1="{py:.1f}" y2="{py:.1f}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<rect x="{self.px(mid) - 4:.1f}" y="{py - 4:.1f}" width="8" height="8" fill="{color}"/>'
        )

    def vline(self, x: float, *, color: str = "#888", dash: str = "4,3", label: str = "") -> None:
        px = self.px(x)
        self.parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{self.height - BOTTOM}" '
            f'stroke="{color}" stroke-dasharray="{dash}"/>'
        )
        if label:
            self.text(x, self.y[1], label, color=color)

    def hline(self, y: float, *, color: str = "#888", dash: str = "4,3") -> None:
        py = self.py(y)
        self.parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" '
            f'stroke="{color}" stroke-dasharray="{dash}"/>'
        )

    def text(
        self, x: float, y: float, label: str, *, color: str = "#333", anchor: str = "start"
    ) -> None:
        self.parts.append(
            f'<text x="{self.px(x) + 3:.1f}" y="{self.py(y) + 4:.1f}" fill="{color}" font-size="11" '
            f'text-anchor="{anchor}">{html.escape(label)}</text>'
        )

    def _axes(self) -> list[str]:
        out = [
            f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{self.height - TOP - BOTTOM}" fill="none" stroke="#999"/>',
            f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
            f"{html.escape(self.title)}</text>",
            f'<text x="{WIDTH / 2}" y="{self.height - 8}" text-anchor="middle" font-size="11">'
            f"{html.escape(self.xlabel)}</text>",
            f'<text x="14" y="{self.height / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 14 {self.height / 2})">{html.escape(self.ylabel)}</text>',
        ]
        for i in range(5):
            xv = self.x[0] + i * (self.x[1] - self.x[0]) / 4
            yv = self.y[0] + i * (self.y[1] - self.y[0]) / 4
            out.append(
                f'<text x="{self.px(xv):.1f}" y="{self.height - BOTTOM + 14}" font-size="10" '
                f'text-anchor="middle">{html.escape(self.xfmt(xv))}</text>'
            )
            if self.yticks:
                out.append(
                    f'<text x="{LEFT - 4}" y="{self.py(yv) + 3:.1f}" font-size="10" '
                    f'text-anchor="end">{yv:.3g}</text>'
                )
        for k, (color, label) in enumerate(self.legend):
            y = TOP + 12 + 14 * k
            out.append(
                f'<rect x="{LEFT + 8}" y="{y - 8}" width="10" height="10" fill="{color}"/>'
                f'<text x="{LEFT + 22}" y="{y + 1}" font-size="11">{html.escape(label)}</text>'
            )
        return out

    def render(self) -> str:
        body = "".join([*self.parts, *self._axes()])
        return (
            f'<svg class="plot" width="{WIDTH}" '
            f'height="{self.height}" viewBox="0 0 {WIDTH} {self.height}">{body}</svg>'
        )
