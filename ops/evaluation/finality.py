"""When a click's label is final: the A/B evaluator counts every example against its final label.

The joiner's decisions about one click arrive in event-time order on one partition. Under
the `fake-negative` policy a `negative` (decided at click_ts + O) may be followed by a
`delayed-positive` up to click_ts + A; under `wait` one `final` comes at click_ts + A.
A click is therefore final

- at once when a decision says it converted (`positive`, `delayed-positive`, or `final`
  with a conversion): a conversion is never taken back;
- at once on a `final` decision (policy wait);
- for a `negative`, once the partition's watermark has passed its deadline
  click_ts + A = label_ts - O + A: a delayed-positive, decided by then, would have arrived;
- at the end of the stream, whatever is still open (its deadline lies beyond the log).

`final_ts` is the event time the label is final at (the decision time, or the deadline),
a function of the example alone. Non-clicked impressions are not CVR examples and are
skipped. Each click remembers the offset of its first decision, so that a restarted
evaluator knows where to re-read from to rebuild the clicks still open.

>>> labels = FinalLabels((10, 100))
>>> rows = [Row(impression_id="a", ts=0, label_ts=10, kind="negative", conversion=0, offset=0),
...         Row(impression_id="b", ts=5, label_ts=8, kind="positive", conversion=1, offset=0)]
>>> [(f.row.impression_id, f.label, f.final_ts) for f in labels.add(rows)]
[('b', 1, 8)]
>>> labels.advance(91), [(f.row.impression_id, f.label, f.final_ts) for f in labels.advance(101)]
([], [('a', 0, 100)])
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ops.errors import EvaluationError

POSITIVE_KINDS = ("positive", "delayed-positive")


@dataclass(kw_only=True, slots=True)  # not frozen: that makes building one per click 5x dearer
class Row:
    """One decision about one click, with what scoring needs (domain, user, and its features:
    column `features[field][index]` of the mini-batch it came in, not copied per row).
    Read-only by convention."""

    impression_id: str
    ts: int
    label_ts: int
    kind: str
    conversion: int
    offset: int
    user_id: str = ""
    conv_type: str = ""
    scenario: str = ""
    features: Mapping[str, Sequence[str]] = field(default_factory=dict)
    index: int = 0

    def feature(self, name: str, missing: str = "-1") -> str:
        """The raw value of one feature field (missing: the value of a field not present)."""
        column = self.features.get(name)
        return missing if column is None else column[self.index]


@dataclass(frozen=True, slots=True)
class Final:
    """A click whose label is final: its row (first decision), label and the event time it was final at."""

    row: Row
    label: int
    final_ts: int

    def sort_key(self) -> tuple[int, str]:
        return (self.final_ts, self.row.impression_id)

    def record(
        self, arm: str, *, assigned: bool, version: int | None, p: float | None, window_s: int
    ) -> dict[str, Any]:
        """Its row of an arm in the experiment's predictions (`ops.store.experiments.COLUMNS`):
        the prediction p of the serving snapshot version (None: the arm had none yet)."""
        row = self.row
        return {
            "arm": arm,
            "impression_id": row.impression_id,
            "user_id": row.user_id,
            "conv_type": row.conv_type,
            "scenario": row.scenario,
            "ts": row.ts,
            "final_ts": self.final_ts,
            "window_start": window_start(row.ts, window_s),
            "assigned": assigned,
            "snapshot_version": version,
            "prediction": p,
            "label": self.label,
        }


class FinalLabels:
    """The open clicks of one partition, released as their labels become final.

    windows: the joiner's label windows (O, A) in seconds, as its mini-batches say them
    (None until the first mini-batch is read; set before its rows are added).
    """

    def __init__(self, windows: tuple[int, int] | None = None) -> None:
        self.windows = windows
        self.open: dict[str, Row] = {}
        self._deadlines: list[tuple[int, str]] = []
        self.done: set[str] = set()  # impression ids decided already (never counted twice)

    @property
    def hold_s(self) -> int:
        """How long after its decision a negative may still turn positive: A - O."""
        if self.windows is None:
            raise ValueError("FinalLabels needs the joiner's label windows before any row")
        observation_window_s, attribution_window_s = self.windows
        return attribution_window_s - observation_window_s

    def add(self, rows: Iterable[Row]) -> list[Final]:
        """Take decisions in order; the clicks they make final, in (final_ts, impression_id) order."""
        out = []
        for row in rows:
            if row.impression_id in self.done or row.kind == "non-click":
                continue
            first = self.open.get(row.impression_id, row)
            if row.kind in POSITIVE_KINDS or (row.kind == "final"):
                out.append(Final(first, int(row.conversion), row.label_ts))
                self._close(row.impression_id)
            elif row.impression_id not in self.open:  # a negative: hold it until its deadline
                self.open[row.impression_id] = row
                heapq.heappush(self._deadlines, (row.label_ts + self.hold_s, row.impression_id))
        return sorted(out, key=Final.sort_key)

    def advance(self, watermark: float) -> list[Final]:
        """Negatives whose deadline is before the watermark, now final."""
        out = []
        while self._deadlines and self._deadlines[0][0] < watermark:
            deadline, impression_id = heapq.heappop(self._deadlines)
            row = self.open.get(impression_id)
            if row is not None:
                out.append(Final(row, 0, deadline))
                self._close(impression_id)
        return sorted(out, key=Final.sort_key)

    def end(self) -> list[Final]:
        """The end of the stream: every open click is final as it stands."""
        return self.advance(float("inf"))

    def first_open_offset(self) -> int | None:
        """The offset of the earliest decision of an open click (None: nothing open)."""
        return min((row.offset for row in self.open.values()), default=None)

    def _close(self, impression_id: str) -> None:
        self.open.pop(impression_id, None)
        self.done.add(impression_id)


def agreed_windows(
    known: tuple[int, int] | None, windows: tuple[int, int] | None, where: str
) -> tuple[int, int]:
    """The joiner's label windows (O, A) a mini-batch says, which every mini-batch must say
    alike (known: those read before; where: the mini-batch, for the error).

    >>> agreed_windows(None, (10, 100), "batch 1"), agreed_windows((10, 100), (10, 100), "batch 2")
    ((10, 100), (10, 100))
    >>> agreed_windows((10, 100), (10, 50), "batch 3")
    Traceback (most recent call last):
    ops.errors.EvaluationError: batch 3 says label windows (O, A) = (10, 50) s, earlier ones said (10, 100) s: the joiner changed its windows mid-stream
    """
    if windows is None:
        raise EvaluationError(
            f"{where} does not say the label windows its joiner decided with (written by an "
            "older mmn join, or not by mmn join); the evaluator cannot tell when a negative is "
            "final: rerun the joiner into a new topic"
        )
    if known is not None and windows != known:
        raise EvaluationError(
            f"{where} says label windows (O, A) = {windows} s, earlier ones said {known} s: "
            "the joiner changed its windows mid-stream"
        )
    return windows


def rows_of(batch: Any, offset: int) -> list[Row]:
    """The clicked rows of a decoded mini-batch (streaming.minibatch.MiniBatch) at offset."""
    clicked = np.flatnonzero(np.asarray(batch.click)).tolist()
    ts, label_ts = np.asarray(batch.ts).tolist(), np.asarray(batch.label_ts).tolist()
    conversion = np.asarray(batch.conversion).tolist()
    ids, users, kinds = batch.impression_ids, batch.user_ids, batch.kinds
    types, scenarios, features = batch.conv_types, batch.scenarios, batch.features
    return [
        Row(
            impression_id=ids[i],
            ts=ts[i],
            label_ts=label_ts[i],
            kind=kinds[i],
            conversion=conversion[i],
            offset=offset,
            user_id=users[i],
            conv_type=types[i],
            scenario=scenarios[i],
            features=features,
            index=i,
        )  # fmt: skip
        for i in clicked
    ]


@dataclass
class PartitionState:
    """An evaluator's state of one partition: its open clicks, the final ones not sealed
    yet, sealed batches, the next offset to read and the watermark read so far."""

    labels: FinalLabels
    queue: list[Final] = field(default_factory=list)
    sealed: deque[list[Final]] = field(default_factory=deque)
    next_offset: int = 0
    watermark: int | None = None

    def resume_offset(self) -> int:
        """The first decision of any click not yet written, else the next offset to read."""
        unwritten = [f.row.offset for batch in self.sealed for f in batch]
        unwritten += [f.row.offset for f in self.queue]
        first_open = self.labels.first_open_offset()
        if first_open is not None:
            unwritten.append(first_open)
        return min([*unwritten, self.next_offset])

    def held_times(self) -> Iterator[int]:
        """The impression times of every click read and not written yet."""
        return itertools.chain(
            (row.ts for row in self.labels.open.values()),
            (final.row.ts for final in self.queue),
            (final.row.ts for batch in self.sealed for final in batch),
        )


def low_water_mark(parts: Iterable[tuple[PartitionState, bool]], *, lookback_s: int) -> int | None:
    """The oldest impression time an evaluator may still score: that of the oldest click it
    holds, or, on a partition not ended, lookback_s before its watermark (where a click not
    read yet may lie); None while a partition has no watermark, or nothing is left.

    parts: each partition's state and whether it has ended.

    >>> open_part = PartitionState(FinalLabels((1, 9)))
    >>> open_part.watermark = 100
    >>> low_water_mark([(open_part, False)], lookback_s=30), low_water_mark([(open_part, True)], lookback_s=30)
    (70, None)
    """
    marks = []
    for part, ended in parts:
        marks.append(min(part.held_times(), default=None))
        if not ended:
            if part.watermark is None:
                return None
            marks.append(part.watermark - lookback_s)
    return min((m for m in marks if m is not None), default=None)


def window_start(ts: int, window_s: int) -> int:
    """Start of the event-time window holding ts.

    >>> window_start(90_000, 86_400), window_start(-1, 86_400)
    (86400, -86400)
    """
    return int(math.floor(ts / window_s) * window_s)
