"""Small inline SVG charts (lines, bands, points, error bars) for the self-contained HTML report.

No plotting library and nothing fetched: a chart is a string of SVG elements in data
coordinates mapped onto a pixel box. Text never enters the plot area: ticks, axis labels
and the legend sit in the margins, labels of rows (forest plots) in a left gutter, and a
mark that needs a name carries it as an SVG `<title>` (shown on hover). Ticks are "nice
numbers" (1, 2 or 5 times a power of ten; whole days or hours on a time axis), and a tick
label at an edge is anchored so that it stays inside the picture.

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
from dataclasses import dataclass
from datetime import UTC, datetime

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
WIDTH, HEIGHT = 640, 320
CHAR_PX = 6.6  # width of a character at 11 px (sans-serif, generous): for laying out text
TICK_FONT, LABEL_FONT = 10, 11


@dataclass(frozen=True, kw_only=True)
class Margins:
    """Space around the plot area, in pixels: ticks, labels and the legend live there."""

    left: int = 64
    right: int = 24
    top: int = 52
    bottom: int = 46


def finite_range(values: Sequence[float | None], pad: float = 0.05) -> tuple[float, float]:
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


def nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about `count` ticks over span.

    >>> nice_step(0.346), nice_step(12_000), nice_step(1.0)
    (0.1, 5000.0, 0.2)
    """
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values inside [lo, hi], about `count` of them (Heckbert's "nice numbers").

    >>> nice_ticks(0.265, 0.611)
    [0.3, 0.4, 0.5, 0.6]
    >>> nice_ticks(0, 11_621, count=6)
    [0.0, 2000.0, 4000.0, 6000.0, 8000.0, 10000.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def fmt_number(v: float) -> str:
    """A tick label: thousands as k, millions as M, otherwise up to 4 significant digits.

    >>> [fmt_number(v) for v in (0.35, 20_000, 1_500_000, -0.02, 0.0)]
    ['0.35', '20k', '1.5M', '-0.02', '0']
    """
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:.4g}" if v else "0"


_DAY = 86_400
_TIME_STEPS = (3600, 2 * 3600, 6 * 3600, 12 * 3600, _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 28 * _DAY)


def time_ticks(lo: float, hi: float, count: int = 6) -> tuple[list[float], Callable[[float], str]]:
    """Ticks on whole hours or days (UTC) over [lo, hi] and the label format that fits them.

    >>> ticks, fmt = time_ticks(1_600_000_000, 1_600_000_000 + 30 * 86_400)
    >>> [fmt(t) for t in ticks]
    ['09-17', '09-24', '10-01', '10-08']
    """
    span = max(hi - lo, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    ticks = [float(t) for t in range(int(first), int(hi) + 1, step)]
    years = {datetime.fromtimestamp(t, UTC).year for t in (lo, hi)}
    pattern = "%m-%d %H:%M" if step < _DAY else "%Y-%m-%d" if len(years) > 1 else "%m-%d"
    return ticks, lambda t: datetime.fromtimestamp(t, UTC).strftime(pattern)


def text_width(label: str, size: int = LABEL_FONT) -> float:
    """A generous estimate of a label's width in pixels (for layout, never for clipping)."""
    return len(label) * CHAR_PX * size / LABEL_FONT


def _e(value: str) -> str:
    return html.escape(value, quote=True)


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
        xticks: tuple[list[float], Callable[[float], str]] | None = None,
        yticks: bool = True,
        height: int = HEIGHT,
        margins: Margins | None = None,
    ) -> None:
        self.x, self.y, self.height = x, y, height
        self.m = margins or Margins()
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.xticks = xticks or (nice_ticks(*x), fmt_number)
        self.show_yticks = yticks
        self.parts: list[str] = []
        self.labels: list[str] = []  # text in the margins (row labels of a forest plot)
        self.legend: list[tuple[str, str, str]] = []  # (color, label, swatch shape)

    @property
    def area(self) -> tuple[float, float, float, float]:
        """The plot area: left, top, right, bottom in pixels."""
        return (self.m.left, self.m.top, WIDTH - self.m.right, self.height - self.m.bottom)

    def px(self, v: float) -> float:
        lo, hi = self.x
        left, _, right, _ = self.area
        return left + (v - lo) / ((hi - lo) or 1.0) * (right - left)

    def py(self, v: float) -> float:
        lo, hi = self.y
        _, top, _, bottom = self.area
        return bottom - (v - lo) / ((hi - lo) or 1.0) * (bottom - top)

    def _inside(self, xs: Sequence[float], ys: Sequence[float | None]) -> list[tuple[float, float]]:
        return [
            (self.px(a), self.py(b))
            for a, b in zip(xs, ys, strict=True)
            if b is not None and math.isfinite(a) and math.isfinite(b)
        ]

    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float | None],
        *,
        color: str,
        label: str = "",
        dash: str = "",
        width: float = 2,
    ) -> None:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in self._inside(xs, ys))
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="{width}"{style} points="{pts}"/>'
        )
        if label:
            self.legend.append((color, label, "line"))

    def band(
        self,
        xs: Sequence[float],
        lo: Sequence[float | None],
        hi: Sequence[float | None],
        *,
        color: str,
    ) -> None:
        upper = self._inside(xs, [self._clip_y(v) for v in hi])
        lower = self._inside(xs, [self._clip_y(v) for v in lo])
        if not upper or not lower:
            return
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in [*upper, *reversed(lower)])
        self.parts.append(
            f'<polygon fill="{color}" fill-opacity="0.18" stroke="none" points="{pts}"/>'
        )

    def _clip_y(self, v: float | None) -> float | None:
        # An infinite bound (no interval yet) is drawn at the edge of the chart.
        if v is None or math.isnan(v):
            return None
        return min(max(v, min(self.y)), max(self.y))

    def points(
        self,
        xs: Sequence[float],
        ys: Sequence[float | None],
        *,
        color: str,
        label: str = "",
        radii: Sequence[float] | None = None,
        titles: Sequence[str] | None = None,
    ) -> None:
        """Circles at (x, y); radii in pixels (default 3.5); titles name each on hover."""
        for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
            if b is None or not (math.isfinite(a) and math.isfinite(b)):
                continue
            r = 3.5 if radii is None else radii[i]
            hover = f"<title>{_e(titles[i])}</title>" if titles else ""
            self.parts.append(
                f'<circle cx="{self.px(a):.1f}" cy="{self.py(b):.1f}" r="{r:.1f}" fill="{color}" '
                f'fill-opacity="0.65" stroke="{color}">{hover}</circle>'
            )
        if label:
            self.legend.append((color, label, "dot"))

    def error_bar_h(
        self, y: float, lo: float, hi: float, mid: float, *, color: str, title: str = ""
    ) -> None:
        """A horizontal interval [lo, hi] at height y with its estimate (forest plots).

        An end beyond the x range stops at the plot's edge with an arrowhead.
        """
        if not all(math.isfinite(v) for v in (lo, hi, mid)):
            return
        x0, x1 = min(self.x), max(self.x)
        py = self.py(y)
        a, b = self.px(max(lo, x0)), self.px(min(hi, x1))
        hover = f"<title>{_e(title)}</title>" if title else ""
        out = [f'<path d="M{a:.1f},{py:.1f}H{b:.1f}" stroke="{color}" stroke-width="2"/>']
        if lo < x0:
            out.append(f'<path d="M{a:.1f},{py:.1f}l6,-4v8z" fill="{color}"/>')
        if hi > x1:
            out.append(f'<path d="M{b:.1f},{py:.1f}l-6,-4v8z" fill="{color}"/>')
        if x0 <= mid <= x1:
            out.append(f'<path d="M{self.px(mid) - 4:.1f},{py - 4:.1f}h8v8h-8z" fill="{color}"/>')
        self.parts.append(f"<g>{hover}{''.join(out)}</g>")

    def vline(self, x: float, *, color: str = "#888", dash: str = "4,3") -> None:
        _, top, _, bottom = self.area
        px = self.px(x)
        self.parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{bottom}" '
            f'stroke="{color}" stroke-dasharray="{dash}"/>'
        )

    def hline(self, y: float, *, color: str = "#888", dash: str = "4,3") -> None:
        left, _, right, _ = self.area
        py = self.py(y)
        self.parts.append(
            f'<line x1="{left}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}" '
            f'stroke="{color}" stroke-dasharray="{dash}"/>'
        )

    def marker(self, x: float, *, color: str, title: str, label: str = "") -> None:
        """A downward triangle above the plot area at x (an event), named on hover."""
        _, top, _, _ = self.area
        px = self.px(x)
        self.parts.append(
            f'<path d="M{px - 5:.1f},{top - 9}h10l-5,8z" fill="{color}">'
            f"<title>{_e(title)}</title></path>"
        )
        if label and all(entry[1] != label for entry in self.legend):
            self.legend.append((color, label, "marker"))

    def row_label(self, y: float, label: str, *, side: str = "left", title: str = "") -> None:
        """A label in the left (or right) gutter at height y: never over the plot area."""
        left, _, right, _ = self.area
        x, anchor = (left - 8, "end") if side == "left" else (right + 8, "start")
        hover = f"<title>{_e(title)}</title>" if title else ""
        self.labels.append(
            f'<text x="{x}" y="{self.py(y) + 4:.1f}" font-size="{LABEL_FONT}" '
            f'text-anchor="{anchor}">{hover}{_e(label)}</text>'
        )

    def _xtick_labels(self) -> list[str]:
        ticks, fmt = self.xticks
        x0, x1 = min(self.x), max(self.x)
        _, _, _, bottom = self.area
        out = []
        for t in ticks:
            if not x0 <= t <= x1:
                continue
            label = fmt(t)
            px = self.px(t)
            half = text_width(label, TICK_FONT) / 2
            anchor = "middle"
            if px - half < 2:
                anchor = "start"
            elif px + half > WIDTH - 2:
                anchor = "end"
            out.append(
                f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#999"/>'
                f'<text x="{px:.1f}" y="{bottom + 15}" font-size="{TICK_FONT}" '
                f'text-anchor="{anchor}">{_e(label)}</text>'
            )
        return out

    def _ytick_labels(self) -> tuple[list[str], list[str]]:
        """Grid lines (drawn under the marks) and tick labels at nice values of y."""
        left, _, right, _ = self.area
        grid, labels = [], []
        for t in nice_ticks(min(self.y), max(self.y)):
            py = self.py(t)
            grid.append(
                f'<line x1="{left}" x2="{right}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>'
            )
            labels.append(
                f'<text x="{left - 6}" y="{py + 3.5:.1f}" font-size="{TICK_FONT}" '
                f'text-anchor="end">{_e(fmt_number(t))}</text>'
            )
        return grid, labels

    def _legend(self) -> tuple[list[str], int]:
        """Rows under the title, left to right, as many as it takes; and how many it took."""
        out = []
        x, y, rows = float(self.m.left), 38.0, 1
        for color, label, shape in self.legend:
            span = 18 + text_width(label) + 16
            if x + span > WIDTH - 4 and x > self.m.left:
                x, y, rows = float(self.m.left), y + 14, rows + 1
            if shape == "line":
                swatch = f'<path d="M{x:.1f},{y - 4:.1f}h14" stroke="{color}" stroke-width="2"/>'
            elif shape == "marker":
                swatch = f'<path d="M{x + 2:.1f},{y - 9:.1f}h10l-5,8z" fill="{color}"/>'
            else:
                swatch = f'<circle cx="{x + 7:.1f}" cy="{y - 4:.1f}" r="4" fill="{color}"/>'
            out.append(
                f'{swatch}<text x="{x + 18:.1f}" y="{y:.1f}" font-size="{LABEL_FONT}">'
                f"{_e(label)}</text>"
            )
            x += span
        return out, rows

    def _axes(self) -> list[str]:
        left, top, right, bottom = self.area
        middle = (top + bottom) / 2
        out = [
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
            f'fill="none" stroke="#999"/>',
            f'<text x="{(left + right) / 2}" y="{self.height - 8}" text-anchor="middle" '
            f'font-size="{LABEL_FONT}">{_e(self.xlabel)}</text>',
            f'<text x="14" y="{middle}" font-size="{LABEL_FONT}" text-anchor="middle" '
            f'transform="rotate(-90 14 {middle})">{_e(self.ylabel)}</text>',
            *self._xtick_labels(),
        ]
        return out

    def render(self) -> str:
        # Grid first, marks above it, then frame and text; a legend of several rows pushes
        # the chart down rather than into the title or the plot.
        legend, rows = self._legend()
        extra = 14 * (rows - 1)
        grid, ticks = self._ytick_labels() if self.show_yticks else ([], [])
        title = (
            f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14" '
            f'font-weight="bold">{_e(self.title)}</text>'
        )
        body = "".join([*grid, *self.parts, *self._axes(), *ticks, *self.labels])
        height = self.height + extra
        return (
            f'<svg class="plot" role="img" aria-label="{_e(self.title)}" '
            f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
            f'{title}{"".join(legend)}<g transform="translate(0,{extra})">{body}</g></svg>'
        )
