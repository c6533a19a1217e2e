"""The label rules: which decisions one impression's facts lead to, and when, in event time.

Pure functions of a *record* (the facts known about one impression id: its impression,
click and conversion, each with the source offset it came from) and a `LabelConfig`; no
Faust, no Kafka. `streaming.partition_joiner` applies them as the watermark advances.

A decision is due at an event time `label_ts` and is taken once the watermark has passed
it (`label_ts < watermark`): by then, within the allowed lateness, every event that could
change it has arrived. Decisions are ordered by `(label_ts, rank, impression_id)`, so the
order of the output does not depend on how the input topics interleave.

Policy `fake-negative` (default): a click whose conversion comes by click_ts + O yields
`positive` (at the conversion's time); otherwise `negative` at click_ts + O and, if the
conversion comes by click_ts + A, `delayed-positive` at the conversion's time.
Policy `wait`: one `final` at click_ts + A, conversion = 1 iff converted by click_ts + A.
With `final_copy` (fake-negative policy; the ES-DFM and DEFER methods of
`ops.training.delayed`), every click also yields its final label at click_ts + A: `final`
for a click not corrected by a `delayed-positive` (the copy of the real negatives, and of
the positives decided inside O, that DEFER trains on), `delayed-final` for one that was.
Together they tell an auxiliary delay model every click's delay once, all at the same age.
An impression without a click by impression ts + click window yields `non-click` then.
A click with no impression open to it (unknown, or after the click window) and a
conversion with no click open to it (no click, or outside [click_ts, click_ts + A]) are
orphans, decided at their own time and sent to the dead-letter topic.

>>> cfg = LabelConfig(observation_window_s=3600, attribution_window_s=86400)
>>> rec = {"i": {"t": 100}, "k": 100, "c": 5000}
>>> [(d.label_ts, d.name, d.conversion) for d in decide(rec, "7", cfg)]
[(3700, 'negative', 0), (5000, 'delayed-positive', 1)]
>>> wait = LabelConfig(policy="wait", observation_window_s=3600, attribution_window_s=86400)
>>> [(d.label_ts, d.name, d.conversion) for d in decide(rec, "7", wait)]
[(86500, 'final', 1)]
>>> copy = LabelConfig(observation_window_s=3600, attribution_window_s=86400, final_copy=True)
>>> [(d.label_ts, d.name, d.conversion) for d in decide({"i": {"t": 100}, "k": 100}, "8", copy)]
[(3700, 'negative', 0), (86500, 'final', 0)]
>>> [(d.label_ts, d.name) for d in decide(rec, "7", copy)]
[(3700, 'negative'), (5000, 'delayed-positive'), (86500, 'delayed-final')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streaming.errors import StreamingError
from streaming.example import KINDS

POLICIES = ("fake-negative", "wait")
ORPHAN_CLICK = "orphan-click"
ORPHAN_CONVERSION = "orphan-conversion"
# Tie-break rank of every decision name at one event time (examples first, then orphans).
RANKS = {name: rank for rank, name in enumerate((*KINDS, ORPHAN_CLICK, ORPHAN_CONVERSION))}

Record = dict[str, Any]
"""Facts about one impression id, JSON-able (it is a Faust table value):

p: source partition; i: impression {u: user, t: ts, ct: conv type, sc: scenario,
f: features}, io: its offset; k: click ts, ku: user, ko: offset, kb: original payload;
c: conversion ts, cu: user, co: offset, cb: original payload. Absent keys: not seen.
"""


@dataclass(frozen=True, kw_only=True)
class LabelConfig:
    """Label semantics, in event-time seconds.

    Attributes:
        policy: `fake-negative` (label early, correct later) or `wait` (label at the end of A).
        observation_window_s: O, how long a click waits for its conversion before a negative.
        attribution_window_s: A, the longest click-to-conversion delay that still counts.
        click_window_s: how long an impression waits for its click before `non-click`.
        allowed_lateness_s: how far behind the newest event time of its topic an event may arrive;
            the watermark is that much behind, and an event behind it is `late-event`.
        max_ahead_s: how far an event may lie ahead of its topic partition's clock; further is
            `implausible-time` (a timestamp in milliseconds, a corrupt clock). Two neighbouring
            events further apart than this confirm no clock time.
        final_copy: with policy fake-negative, also a `final` or `delayed-final` at click_ts + A for
            every click (see the module docstring).
    """

    policy: str = "fake-negative"
    observation_window_s: int = 3600
    attribution_window_s: int = 30 * 86400
    click_window_s: int = 1800
    allowed_lateness_s: int = 0
    max_ahead_s: int = 86_400
    final_copy: bool = False

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise StreamingError(
                f"LabelConfig.policy is {self.policy!r}; choose one of {', '.join(POLICIES)}"
            )
        if not 0 <= self.observation_window_s <= self.attribution_window_s:
            raise StreamingError(
                f"windows must satisfy 0 <= LabelConfig.observation_window_s "
                f"({self.observation_window_s}s) <= LabelConfig.attribution_window_s "
                f"({self.attribution_window_s}s)"
            )
        if self.final_copy and self.policy != "fake-negative":
            raise StreamingError(
                f"LabelConfig.final_copy applies to policy fake-negative only, not {self.policy!r}"
            )
        for name in ("click_window_s", "allowed_lateness_s"):
            if getattr(self, name) < 0:
                raise StreamingError(
                    f"LabelConfig.{name} must be >= 0 seconds, got {getattr(self, name)}"
                )
        if self.max_ahead_s < 1:
            raise StreamingError(
                f"LabelConfig.max_ahead_s must be >= 1 second, got {self.max_ahead_s}"
            )


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One decision about one impression id: an example kind or an orphan reason."""

    label_ts: int
    name: str
    impression_id: str
    conversion: int = 0

    @property
    def key(self) -> tuple[int, int, str]:
        """Total order of decisions on a partition; also the release cursor's type."""
        return (self.label_ts, RANKS[self.name], self.impression_id)

    def sort_key(self) -> tuple[int, int, str]:
        return (self.label_ts, RANKS[self.name], self.impression_id)

    @property
    def is_example(self) -> bool:
        return self.name in KINDS


def click_is_open(record: Record, cfg: LabelConfig) -> bool:
    """True when the record has an impression and a click within its click window."""
    imp, click_ts = record.get("i"), record.get("k")
    if imp is None or click_ts is None:
        return False
    return imp["t"] <= click_ts <= imp["t"] + cfg.click_window_s


def decide(record: Record, impression_id: str, cfg: LabelConfig) -> list[Decision]:
    """Every decision the record's facts lead to, in key order."""
    out: list[Decision] = []
    imp, click_ts, conv_ts = record.get("i"), record.get("k"), record.get("c")
    clicked = click_ts is not None and click_is_open(record, cfg)
    if click_ts is not None and not clicked:
        out.append(Decision(label_ts=click_ts, name=ORPHAN_CLICK, impression_id=impression_id))
    if imp is not None and not clicked:
        out.append(
            Decision(
                label_ts=imp["t"] + cfg.click_window_s,
                name="non-click",
                impression_id=impression_id,
            )
        )
    converted = (
        conv_ts is not None
        and click_ts is not None
        and clicked
        and click_ts <= conv_ts <= click_ts + cfg.attribution_window_s
    )
    if conv_ts is not None and not converted:
        out.append(Decision(label_ts=conv_ts, name=ORPHAN_CONVERSION, impression_id=impression_id))
    if clicked and click_ts is not None:
        out.extend(_click_decisions(click_ts, conv_ts if converted else None, impression_id, cfg))
    if len(out) > 1:
        out.sort(key=Decision.sort_key)
    return out


def _click_decisions(
    click_ts: int, conv_ts: int | None, impression_id: str, cfg: LabelConfig
) -> list[Decision]:
    if cfg.policy == "wait":
        return [_final(click_ts, int(conv_ts is not None), impression_id, cfg)]
    deadline = click_ts + cfg.observation_window_s
    if conv_ts is not None and conv_ts <= deadline:
        out = [
            Decision(label_ts=conv_ts, name="positive", impression_id=impression_id, conversion=1)
        ]
        if cfg.final_copy:
            out.append(_final(click_ts, 1, impression_id, cfg))
        return out
    out = [Decision(label_ts=deadline, name="negative", impression_id=impression_id)]
    if conv_ts is None and cfg.final_copy:
        out.append(_final(click_ts, 0, impression_id, cfg))
    if conv_ts is not None:
        out.append(
            Decision(
                label_ts=conv_ts, name="delayed-positive", impression_id=impression_id, conversion=1
            )
        )
        if cfg.final_copy:
            out.append(_final(click_ts, 1, impression_id, cfg, name="delayed-final"))
    return out


def _final(
    click_ts: int, conversion: int, impression_id: str, cfg: LabelConfig, name: str = "final"
) -> Decision:
    return Decision(
        label_ts=click_ts + cfg.attribution_window_s,
        name=name,
        impression_id=impression_id,
        conversion=conversion,
    )


def horizon(
    record: Record, impression_id: str, cfg: LabelConfig, decisions: list[Decision] | None = None
) -> int:
    """The event time after which the record can be forgotten.

    A clicked record is kept for the whole attribution window, so that a second conversion
    is a duplicate rather than a fresh orphan; otherwise until its last decision.
    `decisions`: the record's, when the caller has them already.
    """
    if decisions is None:
        decisions = decide(record, impression_id, cfg)
    times = [d.label_ts for d in decisions]
    if click_is_open(record, cfg):
        times.append(record["k"] + cfg.attribution_window_s)
    return max(times)
