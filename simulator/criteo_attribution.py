"""The Criteo Attribution Modeling for Bidding file as time-ordered records.

`criteo_attribution_dataset.tsv.gz` (or the plain .tsv): tab-separated with a header,
one row per impression: timestamp, uid, campaign, conversion, conversion_timestamp,
conversion_id, attribution, click, click_pos, click_nb, cost, cpo,
time_since_last_click, cat1..cat9. A true impression -> click -> conversion funnel:
every row is an impression; `click == 1` adds a click at the impression's time; a
clicked impression whose `conversion_field` (default `attribution`: the conversion was
attributed to this click) is 1 adds a conversion at conversion_timestamp.

Features: campaign, cat1..cat9 and time_since_last_click (known when the ad is shown).
Outcomes never reach features: conversion, conversion_timestamp, conversion_id,
attribution, click, click_pos, click_nb, cost, cpo. The impression id is the file line
number (the header is line 1).

Bounded memory: a first pass keeps (timestamp, byte offset in the decompressed text) in
numpy arrays and counts the domain columns. A sorted file is then streamed again; an
unsorted one is decompressed to a temporary file and read back by offset in time order.
"""

from __future__ import annotations

import gzip
import io
import mmap
import shutil
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.criteo_search import top_values
from simulator.errors import SourceError
from simulator.records import LogRecord
from streaming.events import OTHER_DOMAIN

COLUMNS: tuple[str, ...] = (
    "timestamp", "uid", "campaign", "conversion", "conversion_timestamp", "conversion_id",
    "attribution", "click", "click_pos", "click_nb", "cost", "cpo", "time_since_last_click",
    *(f"cat{i}" for i in range(1, 10)),
)  # fmt: skip
FEATURE_FIELDS: tuple[str, ...] = (
    "campaign",
    *(f"cat{i}" for i in range(1, 10)),
    "time_since_last_click",
)
_NUMERIC = ("timestamp", "conversion", "conversion_timestamp", "attribution", "click")


@dataclass(frozen=True, kw_only=True)
class AttributionConfig:
    """Domain columns (top-K values, the rest "other") and which flag makes a conversion.

    Our defaults: cat1 as the conversion type, campaign as the display scenario (the
    attribution file has neither; `mmn data profile` does not read this format, so
    inspect the columns first).
    """

    type_field: str = "cat1"
    scenario_field: str = "campaign"
    top_types: int = 20
    top_scenarios: int = 16
    conversion_field: str = "attribution"

    def __post_init__(self) -> None:
        for name in (self.type_field, self.scenario_field):
            if name not in FEATURE_FIELDS:
                raise SourceError(
                    f"domain column {name!r} is not a feature column of the attribution file; "
                    f"choose one of {', '.join(FEATURE_FIELDS)}"
                )
        if self.conversion_field not in ("attribution", "conversion"):
            raise SourceError(
                f"conversion_field {self.conversion_field!r}: choose 'attribution' or 'conversion'"
            )


def _open(path: Path) -> io.BufferedIOBase:
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror}") from exc


class AttributionLog:
    """An attribution file as records in impression-time order (a `LogSource`)."""

    def __init__(self, path: Path, config: AttributionConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config or AttributionConfig()
        self._pos = {name: i for i, name in enumerate(COLUMNS)}
        ts, starts, lines = array("q"), array("q"), array("q")
        t_counts: Counter[str] = Counter()
        s_counts: Counter[str] = Counter()
        t_col, s_col = self._pos[self.config.type_field], self._pos[self.config.scenario_field]
        offset = 0
        with _open(self.path) as handle:
            try:
                header = handle.readline()
                offset = len(header)
                names = tuple(header.decode("utf-8", errors="replace").rstrip("\r\n").split("\t"))
                if names != COLUMNS:
                    raise SourceError(
                        f"{self.path}: line 1: header {names[:4]}... is not the attribution "
                        f"file's ({', '.join(COLUMNS[:4])}, ...)"
                    )
                for line_no, raw in enumerate(handle, start=2):
                    fields = self._split(raw, line_no)
                    ts.append(int(float(fields[0])))
                    starts.append(offset)
                    lines.append(line_no)
                    offset += len(raw)
                    t_counts[fields[t_col].decode("utf-8", errors="replace")] += 1
                    s_counts[fields[s_col].decode("utf-8", errors="replace")] += 1
            except (OSError, EOFError) as exc:
                raise SourceError(f"{self.path}: cannot read (corrupt gzip?): {exc}") from exc
        ts_arr = np.frombuffer(ts, dtype=np.int64)
        self._sorted = bool(np.all(np.diff(ts_arr) >= 0))
        order = np.argsort(ts_arr, kind="stable")
        self._ts, self._starts = ts_arr[order], np.frombuffer(starts, dtype=np.int64)[order]
        self._lines = np.frombuffer(lines, dtype=np.int64)[order]
        self.types = top_values(t_counts, self.config.top_types)
        self.scenarios = top_values(s_counts, self.config.top_scenarios)

    def __len__(self) -> int:
        return len(self._ts)

    def _split(self, raw: bytes, line_no: int) -> list[bytes]:
        fields = raw.rstrip(b"\r\n").split(b"\t")
        if len(fields) != len(COLUMNS):
            raise SourceError(
                f"{self.path}: line {line_no}: {len(fields)} tab-separated columns, expected "
                f"{len(COLUMNS)} (a truncated or corrupt line?)"
            )
        for name in _NUMERIC:
            value = fields[self._pos[name]]
            try:
                float(value)
            except ValueError:
                raise SourceError(
                    f"{self.path}: line {line_no}: column {name} is {value[:40]!r}, expected a number"
                ) from None
        return fields

    def _raw_lines(self) -> Iterator[tuple[int, list[bytes]]]:
        if self._sorted:
            with _open(self.path) as handle:
                handle.readline()
                for line_no, raw in enumerate(handle, start=2):
                    yield line_no, raw.rstrip(b"\r\n").split(b"\t")
            return
        with tempfile.TemporaryFile() as plain:
            with _open(self.path) as handle:
                shutil.copyfileobj(handle, plain, 1 << 20)
            plain.flush()
            if len(self._starts) == 0:
                return
            with mmap.mmap(plain.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                for start, line_no in zip(self._starts.tolist(), self._lines.tolist(), strict=True):
                    end = mm.find(b"\n", start)
                    yield (
                        line_no,
                        mm[start : end if end >= 0 else len(mm)].rstrip(b"\r").split(b"\t"),
                    )

    def rows(self) -> Iterator[LogRecord]:
        """One record per impression in timestamp order (file order for ties)."""
        pos = self._pos
        feature_idx = [pos[f] for f in FEATURE_FIELDS]
        t_col, s_col = pos[self.config.type_field], pos[self.config.scenario_field]
        conv_col = pos[self.config.conversion_field]
        types, scenarios = set(self.types), set(self.scenarios)
        for line_no, fields in self._raw_lines():
            text = {
                name: fields[i].decode("utf-8", errors="replace")
                for name, i in zip(FEATURE_FIELDS, feature_idx, strict=True)
            }
            ts = int(float(fields[0]))
            clicked = fields[pos["click"]] == b"1"
            sale = clicked and fields[conv_col] == b"1"
            conv_type = fields[t_col].decode("utf-8", errors="replace")
            scenario = fields[s_col].decode("utf-8", errors="replace")
            yield LogRecord(
                impression_id=str(line_no),
                user_id=fields[pos["uid"]].decode("utf-8", errors="replace"),
                ts=ts,
                click_ts=ts if clicked else None,
                sale=int(sale),
                # A conversion is never placed before its click.
                conversion_ts=max(ts, int(float(fields[pos["conversion_timestamp"]])))
                if sale
                else None,
                amount=0.0,
                features=text,
                conv_type=conv_type if conv_type in types else OTHER_DOMAIN,
                scenario=scenario if scenario in scenarios else OTHER_DOMAIN,
            )
