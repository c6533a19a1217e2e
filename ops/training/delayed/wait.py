"""`wait`: learn each click once, at the end of its attribution window, with its final label.

No fake negatives and no correction, but every label is A (30 days by default) old when
it is learnt: the model lags the stream by the whole window.
"""

from __future__ import annotations

import dataclasses

from ops.training.delayed.base import DelayedFeedback
from streaming.labels import LabelConfig


class Wait(DelayedFeedback):
    """The joiner's `wait` policy: one `final` row per click at click + A."""

    name = "wait"
    copies = frozenset[str]()

    def labels(self, base: LabelConfig) -> LabelConfig:
        return dataclasses.replace(base, policy="wait", final_copy=False)
