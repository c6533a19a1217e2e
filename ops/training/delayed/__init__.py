"""Delayed-feedback methods: how the joiner labels a click, and how the learner weights the rows.

A conversion can come up to the attribution window A (30 days) after its click, so a model
that learns online sees most clicks before their label is final. Each method is one small
module under the contract of `DelayedFeedback`:

- `labels(base)`: the `streaming.labels.LabelConfig` the joiner labels with (the joiner and
  `mmn bench stream` both apply the pure label logic of `streaming.labels`);
- `trains(kinds)`: which rows the main model learns from;
- `weights(kinds, label, p, aux)`: the weight of each row's conversion (CTCVR) term; the
  click (CTR) term of a copy of an already counted click weighs 0 (`click_weights`).

| method | labels | weights |
|---|---|---|
| vanilla | fake negative at O, `delayed-positive` copy | 1 |
| wait | one `final` at click + A | 1 |
| fnw | fake negative at once (O = 0), copy | Ktena et al. 2019 |
| es-dfm | fake negative at O, copy; final labels at A for the auxiliary model | Yang et al. 2021 |
| defer | fake negative at O, copy; every other click again at A (`final`) | Gu et al. 2021 |
| oracle | the final label at click time (`mmn bench stream` only) | 1 |

>>> names()
('vanilla', 'wait', 'fnw', 'es-dfm', 'defer', 'oracle')
>>> from streaming.labels import LabelConfig
>>> get("fnw").labels(LabelConfig()).observation_window_s
0
"""

from __future__ import annotations

from ops.errors import ConfigError
from ops.training.delayed.aux import DelayPrediction
from ops.training.delayed.base import DelayedFeedback
from ops.training.delayed.defer import Defer
from ops.training.delayed.esdfm import EsDfm
from ops.training.delayed.fnw import Fnw
from ops.training.delayed.oracle import Oracle
from ops.training.delayed.vanilla import Vanilla
from ops.training.delayed.wait import Wait

_METHODS: dict[str, DelayedFeedback] = {
    m.name: m for m in (Vanilla(), Wait(), Fnw(), EsDfm(), Defer(), Oracle())
}
STREAM_METHODS = tuple(name for name in _METHODS if name != "oracle")
"""The methods a live stream can use (the oracle needs the future)."""

__all__ = ["DelayPrediction", "DelayedFeedback", "STREAM_METHODS", "get", "names"]


def names() -> tuple[str, ...]:
    """Every method's name, in the table's order."""
    return tuple(_METHODS)


def get(name: str) -> DelayedFeedback:
    """The method called name; ConfigError naming the choices otherwise."""
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(
            f"delayed-feedback method {name!r} is unknown; choose one of {', '.join(_METHODS)}"
        ) from None
