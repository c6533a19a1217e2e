"""`oracle`: every click learnt at click time with its final label (the RI-AUC's 1).

It needs the future (the conversion that comes days later), so only `mmn bench stream`
uses it, as the upper bound that the real methods are measured against.
"""

from __future__ import annotations

import dataclasses

from ops.errors import ConfigError
from ops.training.delayed.base import DelayedFeedback
from streaming.labels import Decision, LabelConfig, Record, decide


class Oracle(DelayedFeedback):
    """The `wait` policy's final label, decided at the click's own time."""

    name = "oracle"
    copies = frozenset[str]()

    def labels(self, base: LabelConfig) -> LabelConfig:
        raise ConfigError("method oracle needs labels from the future: it is for mmn bench stream")

    def decisions(self, record: Record, impression_id: str, base: LabelConfig) -> list[Decision]:
        """The wait policy's decisions, moved to the click's time.

        >>> cfg = LabelConfig(attribution_window_s=86400)
        >>> [(d.label_ts, d.name, d.conversion)
        ...  for d in Oracle().decisions({"i": {"t": 5}, "k": 9, "c": 900}, "1", cfg)]
        [(9, 'final', 1)]
        """
        final = decide(record, impression_id, dataclasses.replace(base, policy="wait"))
        return [
            dataclasses.replace(d, label_ts=record["k"]) if d.name == "final" else d for d in final
        ]
