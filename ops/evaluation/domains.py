"""Table 3's per-domain aggregation: a figure per conversion type and per display scenario,
and the paper's average AUC over all of those columns.

One home for the rule that the offline experiment, the holdout scoring, the A/B report and
the stream bench share: the columns are the types then the scenarios, each column's
figure is computed on its rows alone, and the average is the plain mean of the columns'
AUCs, a column whose rows hold one class only (no AUC) left out.

>>> from ops.metrics import exact_auc
>>> labels, scores = np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.2, 0.7])
>>> masks = domain_masks(np.array(["a", "a", "b", "b", "c"]), np.array(["x"] * 5))
>>> table = by_domain(labels, scores, masks, exact_auc)
>>> table["per_type"]  # c's rows are all positives: no AUC
{'a': 1.0, 'b': 0.0, 'c': nan}
>>> round(table["per_scenario"]["x"], 4), round(average_auc(table), 4)  # mean of a, b and x
(0.6667, 0.5556)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F")

COLUMNS = ("per_type", "per_scenario")  # Table 3's column groups, in the paper's order

Masks = dict[str, dict[Any, np.ndarray]]


def domain_masks(
    conv_types: Sequence[str] | np.ndarray, scenarios: Sequence[str] | np.ndarray
) -> Masks:
    """Row masks of every domain present: {"per_type": {value: mask}, "per_scenario": ...},
    values sorted."""
    masks: Masks = {}
    for key, values in zip(COLUMNS, (conv_types, scenarios), strict=True):
        column = np.asarray(values)
        masks[key] = {v: column == v for v in sorted(set(column.tolist()))}
    return masks


def by_domain(
    labels: np.ndarray,
    scores: np.ndarray,
    masks: Mapping[str, Mapping[Any, np.ndarray]],
    figure: Callable[[np.ndarray, np.ndarray], F],
) -> dict[str, dict[Any, F]]:
    """figure(labels, scores) of each domain's rows, in the layout of masks."""
    return {
        key: {value: figure(labels[m], scores[m]) for value, m in by_value.items()}
        for key, by_value in masks.items()
    }


def average_auc(table: Mapping[str, Mapping[Any, Any]], auc: str | None = None) -> float:
    """Table 3's average: the mean AUC over every type and scenario column with one (nan if none).

    auc: the key of the AUC in each column's figures (None: the figures are AUCs).
    """
    aucs = [f if auc is None else f[auc] for key in COLUMNS for f in table[key].values()]
    defined = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(defined)) if defined else math.nan
