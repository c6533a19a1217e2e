"""The old home of the project's metrics, now `ops.metrics`: only `ops.evaluation.serving`
still imports EPS from here, until its import moves too (then delete this module)."""

from __future__ import annotations

from ops.metrics import EPS

__all__ = ["EPS"]
