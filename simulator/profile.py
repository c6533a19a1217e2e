"""Profile a CriteoSearchData file: rows, time span, sale rate, values per column.

Meant for choosing the domain columns of a real file: a good conversion-type or scenario
column has a few dozen frequent values. One pass, bounded memory: each column counts at
most `max_distinct` distinct values exactly; past that it reports a lower bound and its
top values among those it counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from simulator.columns import COLUMNS, INDEX
from simulator.criteo_search import read_lines


@dataclass(kw_only=True)
class ColumnProfile:
    """Distinct values of one column; `capped` when it has more than were counted."""

    name: str
    counts: Counter[str] = field(default_factory=Counter)
    capped: bool = False
    missing: int = 0


@dataclass(kw_only=True)
class Profile:
    """What `mmn data profile` prints."""

    path: Path
    rows: int = 0
    sales: int = 0
    missing_ts: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    columns: list[ColumnProfile] = field(default_factory=list)

    def lines(self, top: int = 5) -> list[str]:
        first, last = self.first_ts, self.last_ts
        days = (last - first) / 86_400 if first is not None and last is not None else 0.0
        rate = self.sales / self.rows if self.rows else 0.0
        out = [
            f"{self.path}: {self.rows:,} rows, sale rate {rate:.2%}",
            f"click_timestamp {self.first_ts} .. {self.last_ts} ({days:.1f} days), "
            f"{self.missing_ts:,} rows without one (0)",
            f"{'column':<26} {'distinct':>10} {'missing':>8}  top values (share of rows)",
        ]
        for col in self.columns:
            distinct = f">{len(col.counts):,}" if col.capped else f"{len(col.counts):,}"
            tops = ", ".join(
                f"{value[:12]}{'..' if len(value) > 12 else ''} {n / max(self.rows, 1):.1%}"
                for value, n in col.counts.most_common(top)
            )
            share = col.missing / max(self.rows, 1)
            out.append(f"{col.name:<26} {distinct:>10} {share:>8.1%}  {tops}")
        return out


SKIPPED = ("click_timestamp",)


def profile(path: Path, *, max_distinct: int = 100_000, limit: int | None = None) -> Profile:
    """Count rows, sales, the time span and each column's values in one pass."""
    path = Path(path)
    result = Profile(path=path)
    columns = [
        (i, ColumnProfile(name=name)) for i, name in enumerate(COLUMNS) if name not in SKIPPED
    ]
    result.columns = [c for _, c in columns]
    ts_col, sale_col = INDEX["click_timestamp"], INDEX["Sale"]
    first = last = None
    for _, _, fields in read_lines(path, limit):
        result.rows += 1
        result.sales += fields[sale_col] == b"1"
        ts = int(float(fields[ts_col]))
        if ts == 0:
            result.missing_ts += 1
        else:
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
        for i, col in columns:
            value = fields[i]
            if value == b"-1":
                col.missing += 1
            counts = col.counts
            key = value.decode("utf-8", errors="replace")
            if key in counts or len(counts) < max_distinct:
                counts[key] += 1
            else:
                col.capped = True
    result.first_ts, result.last_ts = first, last
    return result
