"""`vanilla`: fake negatives after the observation window, delayed positives added, no weights.

The baseline of the delayed-feedback literature (the RI-AUC's 0): a click not converted
within O is learnt as a negative, a conversion after O comes as one more positive row, and
nothing corrects the bias (the model under-estimates by the share of fake negatives).
"""

from __future__ import annotations

from ops.training.delayed.base import DelayedFeedback


class Vanilla(DelayedFeedback):
    """Fake negatives plus duplicated positives, unweighted (the contract's defaults)."""

    name = "vanilla"
