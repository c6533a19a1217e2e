"""The record every log source yields, and the contract of a source.

A source yields one `LogRecord` per impression in event-time order (ties in file order).
The replay turns a record into an Impression at `ts`, a Click at `click_ts` when there is
one, and a Conversion at `conversion_ts` when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRecord:
    """One impression of a log with its click and conversion, if any.

    ts: impression time; click_ts: click time or None (not clicked); sale: 1 when a
    conversion is attributed to it, at conversion_ts (never before click_ts); amount: the
    conversion's value (an outcome, never a feature); features: raw strings of the feature
    fields ("-1" for missing, as in the file); conv_type / scenario: the domain values
    (top-K values of the domain columns, the rest "other").
    """

    impression_id: str
    user_id: str
    ts: int
    click_ts: int | None
    sale: int
    conversion_ts: int | None
    amount: float
    features: dict[str, str]
    conv_type: str
    scenario: str


class LogSource(Protocol):
    """A log that yields its records in event-time order.

    types / scenarios: the domain values, "other" last; len(): the number of records.
    """

    types: tuple[str, ...]
    scenarios: tuple[str, ...]

    def __len__(self) -> int: ...

    def rows(self) -> Iterator[LogRecord]: ...
