"""The Criteo Sponsored Search Conversion Log (`CriteoSearchData`) as time-ordered records.

Every line is one impression and its click; a line with Sale == 1 also has a conversion
at click_timestamp + time_delay_for_conversion. The file is not perfectly sorted, so the
reader makes two passes with bounded memory (the real file has 16M lines, 6.4 GB):

1. read every line once: validate it, keep its click_timestamp and byte offset in numpy
   arrays (16 bytes a line) and count the values of the type and scenario columns;
2. sort the offsets by time (stable for ties: file order) and read the lines back by
   offset, in time order.

A line with click_timestamp 0 (missing) cannot be placed in event time and is skipped;
`SearchLog.skipped` counts them. The impression id is the 1-based line number.

Domains: the `top_types` most frequent values of `type_field` are conversion types and
the rest share "other"; the same for scenarios. Our defaults (product_category1 as the
type, product_country as the scenario; 20 + "other" = 21 types and 16 + "other" = 17
scenarios, the paper's counts) are a choice: the paper does not name its columns.
`mmn data profile FILE` counts distinct values per column to choose others.
"""

from __future__ import annotations

import os
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TypedDict

import numpy as np

from simulator.columns import COLUMNS, FEATURE_FIELDS, INDEX
from simulator.errors import SourceError
from simulator.records import LogRecord
from streaming.events import OTHER_DOMAIN

__all__ = ["FEATURE_FIELDS", "CriteoSearchConfig", "SearchColumns", "SearchLog", "load_columns"]

_SALE, _AMOUNT, _DELAY, _TS = (INDEX[c] for c in COLUMNS[:4])
_NB_CLICKS, _PRICE = INDEX["nb_clicks_1week"], INDEX["product_price"]
_FEATURE_IDX = tuple(INDEX[f] for f in FEATURE_FIELDS)
_CHUNK = 65_536


class Capacities(TypedDict):
    """A model's domain vocabulary sizes, as `model.config.ModelConfig` names them."""

    n_types: int
    n_scenarios: int


@dataclass(frozen=True, kw_only=True)
class CriteoSearchConfig:
    """Which columns hold the domains and how many of their values become domains.

    Attributes:
        type_field: column of the conversion type; any of the 18 feature fields.
        scenario_field: column of the display scenario; any of the 18 feature fields.
        top_types: the most frequent types that become domains; all other values share "other",
            which is always a domain (so N_t = top_types + 1).
        top_scenarios: the same for scenarios (N_s = top_scenarios + 1).
    """

    type_field: str = "product_category1"
    scenario_field: str = "product_country"
    top_types: int = 20
    top_scenarios: int = 16

    def __post_init__(self) -> None:
        for name in (self.type_field, self.scenario_field):
            if name not in FEATURE_FIELDS:
                raise SourceError(
                    f"domain column {name!r} is not a feature column of CriteoSearchData; "
                    f"choose one of {', '.join(FEATURE_FIELDS)}"
                )

    @property
    def capacities(self) -> Capacities:
        """The model's domain vocabulary sizes (`ModelConfig.n_types`, `n_scenarios`) for
        these domains: the top values and "other".

        >>> CriteoSearchConfig().capacities
        {'n_types': 21, 'n_scenarios': 17}
        """
        return Capacities(n_types=self.top_types + 1, n_scenarios=self.top_scenarios + 1)


def top_values(counts: Counter[str], k: int) -> tuple[str, ...]:
    """The k most frequent values (ties broken by value, so the choice is deterministic), then "other".

    >>> top_values(Counter({"b": 2, "a": 2, "c": 1}), 2)
    ('a', 'b', 'other')
    """
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return (*(value for value, _ in ranked[:k] if value != OTHER_DOMAIN), OTHER_DOMAIN)


def _number(text: bytes, path: Path, line_no: int, column: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise SourceError(
            f"{path}: line {line_no}: column {COLUMNS[column]} is {text[:40]!r}, expected a number"
        ) from None


def split_line(raw: bytes, path: Path, line_no: int) -> list[bytes]:
    """The 23 fields of one line; a wrong column count or a non-numeric number raises SourceError."""
    fields = raw.rstrip(b"\r\n").split(b"\t")
    if len(fields) != len(COLUMNS):
        raise SourceError(
            f"{path}: line {line_no}: {len(fields)} tab-separated columns, expected "
            f"{len(COLUMNS)} (a truncated or corrupt line?)"
        )
    for column in (_SALE, _AMOUNT, _DELAY, _TS, _NB_CLICKS, _PRICE):
        _number(fields[column], path, line_no, column)
    if fields[_SALE] not in (b"0", b"1"):
        raise SourceError(f"{path}: line {line_no}: Sale is {fields[_SALE]!r}, expected 0 or 1")
    return fields


def read_lines(path: Path, limit: int | None = None) -> Iterator[tuple[int, bytes, list[bytes]]]:
    """(line number, raw line, its 23 fields) of the first `limit` lines; a bad one raises SourceError."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror}") from exc
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if limit is not None and line_no > limit:
                break
            yield line_no, raw, split_line(raw, path, line_no)


@dataclass(frozen=True, kw_only=True)
class _Index:
    """The kept lines in time order: byte ranges, line numbers, click times; the domains."""

    starts: np.ndarray
    ends: np.ndarray
    line_no: np.ndarray
    ts: np.ndarray
    types: tuple[str, ...]
    scenarios: tuple[str, ...]
    skipped: int


def _scan(path: Path, config: CriteoSearchConfig, limit: int | None) -> _Index:
    """First pass: validate every line, keep (ts, byte range), count the domain columns."""
    # array('q') keeps 8 bytes per value, where a list of ints would take ~36 (16M lines).
    ts, starts, ends, lines = (array("q") for _ in range(4))
    type_counts: Counter[bytes] = Counter()
    scen_counts: Counter[bytes] = Counter()
    t_col, s_col = INDEX[config.type_field], INDEX[config.scenario_field]
    skipped = 0
    offset = 0
    for line_no, raw, fields in read_lines(path, limit):
        start, offset = offset, offset + len(raw)
        click_ts = int(float(fields[_TS]))
        if click_ts == 0:
            skipped += 1
            continue
        ts.append(click_ts)
        starts.append(start)
        ends.append(offset)
        lines.append(line_no)
        type_counts[fields[t_col]] += 1
        scen_counts[fields[s_col]] += 1
    ts_arr = np.frombuffer(ts, dtype=np.int64)
    order = np.argsort(ts_arr, kind="stable")

    def decoded(counts: Counter[bytes]) -> Counter[str]:
        return Counter({k.decode("utf-8", errors="replace"): v for k, v in counts.items()})

    return _Index(
        starts=np.frombuffer(starts, dtype=np.int64)[order],
        ends=np.frombuffer(ends, dtype=np.int64)[order],
        line_no=np.frombuffer(lines, dtype=np.int64)[order],
        ts=ts_arr[order],
        types=top_values(decoded(type_counts), config.top_types),
        scenarios=top_values(decoded(scen_counts), config.top_scenarios),
        skipped=skipped,
    )


def _lines(path: Path, index: _Index) -> Iterator[tuple[int, int, list[bytes]]]:
    """Second pass: (line number, click time, fields) of the kept lines in time order."""
    if len(index.starts) == 0:
        return
    # pread by offset rather than a memory map: the mostly sorted file is read almost
    # sequentially through the page cache, and the process does not hold its pages.
    with path.open("rb") as handle:
        fd = handle.fileno()
        # Chunks keep the Python ints few: tolist() of 16M offsets would take ~600 MB.
        for at in range(0, len(index.starts), _CHUNK):
            part = slice(at, at + _CHUNK)
            for start, end, line_no, ts in zip(
                index.starts[part].tolist(),
                index.ends[part].tolist(),
                index.line_no[part].tolist(),
                index.ts[part].tolist(),
                strict=True,
            ):
                yield line_no, ts, os.pread(fd, end - start, start).rstrip(b"\r\n").split(b"\t")


class SearchLog:
    """A CriteoSearchData file as records in click order (a `LogSource`).

    Building it reads the whole file once (validation, order, domain counts); `rows()`
    then reads it again in time order. `limit` keeps only the first lines of the file.
    """

    def __init__(
        self, path: Path, config: CriteoSearchConfig | None = None, *, limit: int | None = None
    ) -> None:
        self.path = Path(path)
        self.config = config or CriteoSearchConfig()
        self._index = _scan(self.path, self.config, limit)
        self.types = self._index.types
        self.scenarios = self._index.scenarios

    def __len__(self) -> int:
        return len(self._index.ts)

    @property
    def skipped(self) -> int:
        """Lines skipped because their click_timestamp is 0 (missing)."""
        return self._index.skipped

    def rows(self) -> Iterator[LogRecord]:
        """One record per kept line, in click_timestamp order (file order for ties)."""
        t_pos = FEATURE_FIELDS.index(self.config.type_field)
        s_pos = FEATURE_FIELDS.index(self.config.scenario_field)
        types, scenarios = set(self.types), set(self.scenarios)
        pick = itemgetter(*_FEATURE_IDX)
        user_pos = FEATURE_FIELDS.index("user_id")
        for line_no, click_ts, fields in _lines(self.path, self._index):
            text = [f.decode("utf-8", errors="replace") for f in pick(fields)]
            sale = fields[_SALE] == b"1"
            conversion_ts, amount = None, 0.0
            if sale:
                # A sale without a delay (-1) is placed at its click: it cannot be earlier.
                conversion_ts = click_ts + max(int(float(fields[_DELAY])), 0)
                amount = float(fields[_AMOUNT])
            conv_type, scenario = text[t_pos], text[s_pos]
            yield LogRecord(
                impression_id=str(line_no),
                user_id=text[user_pos],
                ts=click_ts,
                click_ts=click_ts,
                sale=int(sale),
                conversion_ts=conversion_ts,
                amount=amount,
                features=dict(zip(FEATURE_FIELDS, text, strict=True)),
                conv_type=conv_type if conv_type in types else OTHER_DOMAIN,
                scenario=scenario if scenario in scenarios else OTHER_DOMAIN,
            )


@dataclass(frozen=True, kw_only=True)
class SearchColumns:
    """A CriteoSearchData file as columns in click order, for offline experiments.

    impression_id: 1-based line numbers; conversion_ts: -1 without a sale; amount: 0
    without a sale; type_index / scenario_index: positions in `types` / `scenarios`
    ("other" last); features: the 18 feature fields as object arrays of raw strings.
    """

    impression_id: np.ndarray
    click_ts: np.ndarray
    sale: np.ndarray
    conversion_ts: np.ndarray
    amount: np.ndarray
    type_index: np.ndarray
    scenario_index: np.ndarray
    types: tuple[str, ...]
    scenarios: tuple[str, ...]
    features: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.impression_id)


def load_columns(
    path: Path, config: CriteoSearchConfig | None = None, rows: int | None = None
) -> SearchColumns:
    """Load the file (or its first `rows` lines) as columns sorted by click time.

    Domains are counted over the loaded lines. Equal strings share one object, so a
    million rows take a few hundred MB (mostly the 8-byte references of the 18 columns).
    """
    config = config or CriteoSearchConfig()
    path = Path(path)
    index = _scan(path, config, rows)
    n = len(index.ts)
    numbers = {col: np.empty(n) for col in (_SALE, _AMOUNT, _DELAY)}
    text = {col: np.empty(n, dtype=object) for col in _FEATURE_IDX}
    # One str per distinct value: categorical columns repeat a few values many times.
    interned: dict[int, dict[bytes, str]] = {col: {} for col in _FEATURE_IDX}
    for row, (_, _, fields) in enumerate(_lines(path, index)):
        for col, out in numbers.items():
            out[row] = float(fields[col])
        for col, out in text.items():
            value = fields[col]
            cache = interned[col]
            decoded = cache.get(value)
            if decoded is None:
                decoded = cache[value] = value.decode("utf-8", errors="replace")
            out[row] = decoded

    sale = numbers[_SALE].astype(np.int8)
    delay = numbers[_DELAY].astype(np.int64)
    conversion_ts = np.where(sale == 1, index.ts + np.maximum(delay, 0), -1)
    features = {name: text[i] for name, i in zip(FEATURE_FIELDS, _FEATURE_IDX, strict=True)}

    def domain_index(values: np.ndarray, domains: tuple[str, ...]) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(domains)}
        other = len(domains) - 1
        return np.array([lookup.get(v, other) for v in values.tolist()], dtype=np.int16)

    return SearchColumns(
        impression_id=index.line_no.copy(),
        click_ts=index.ts.copy(),
        sale=sale,
        conversion_ts=conversion_ts,
        amount=np.where(sale == 1, numbers[_AMOUNT], 0.0),
        type_index=domain_index(features[config.type_field], index.types),
        scenario_index=domain_index(features[config.scenario_field], index.scenarios),
        types=index.types,
        scenarios=index.scenarios,
        features=features,
    )
