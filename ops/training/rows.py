"""What the learner reads: the columns of one labeled mini-batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike


class LabeledRows(Protocol):
    """What the learner reads from a mini-batch (a decoded `streaming.minibatch.MiniBatch`).

    Read-only columns of one length B; numeric columns may be numpy arrays or sequences.
    """

    @property
    def impression_ids(self) -> Sequence[str]: ...
    @property
    def kinds(self) -> Sequence[str]: ...
    @property
    def conv_types(self) -> Sequence[str]: ...
    @property
    def scenarios(self) -> Sequence[str]: ...
    @property
    def features(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def click(self) -> ArrayLike: ...
    @property
    def conversion(self) -> ArrayLike: ...
    @property
    def label_ts(self) -> Sequence[int] | np.ndarray: ...
    @property
    def watermark(self) -> int | None: ...
    @property
    def end(self) -> bool: ...
