"""The evaluator's featurizing: each value hashed once per process, each mini-batch once.

Clicks are scored in groups that gather rows of several mini-batches (and, in shadow
mode, again for every arm), so the id matrix of a decoded mini-batch is computed once
(`Featurizer.columns`: each distinct value of a column looked up once, the rows mapped by
one numpy index) and rows take their ids from it. The ids are those of
`model.features.Featurizer`: the same hash in every process.

>>> from model.features import FeaturizerConfig
>>> from ops.evaluation.finality import Row
>>> featurizer = MemoFeaturizer(FeaturizerConfig(fields=("a", "b"), buckets=100))
>>> batch = {"a": ["x", "y"], "b": ["1", "2"]}
>>> rows = [Row(impression_id=str(i), ts=0, label_ts=0, kind="final", conversion=0,
...             offset=0, features=batch, index=i) for i in (1, 0)]
>>> (featurizer.row_ids(rows) == featurizer.columns(batch)[[1, 0]]).all()
np.True_
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from model.features import Featurizer, FeaturizerConfig
from ops.evaluation.finality import Row


class MemoFeaturizer(Featurizer):
    """A featurizer that remembers the id of every value of every field it hashed (bounded),
    and the id matrix of the last mini-batches it saw."""

    def __init__(self, config: FeaturizerConfig, size: int = 1_000_000, batches: int = 64) -> None:
        super().__init__(config)
        self.size = size  # values remembered per field
        self._ids: dict[str, dict[str, int]] = {f: {} for f in config.fields}
        self.batches = batches
        # id(features) -> (features, ids): the features are held, so their id stays theirs.
        self._batch_ids: OrderedDict[int, tuple[Mapping, np.ndarray]] = OrderedDict()

    def table(self, field: str, values: Sequence[str]) -> np.ndarray:
        """The ids of values of one field, in their order; only values not seen before are hashed."""
        known = self._ids[field]
        new = set(values).difference(known)
        if len(known) + len(new) > self.size:
            known.clear()
            new = set(values)
        if new:
            fresh = list(new)
            known.update(zip(fresh, super().table(field, fresh).tolist(), strict=True))
        return np.fromiter(map(known.__getitem__, values), dtype=np.int64, count=len(values))

    def row_ids(self, rows: Sequence[Row]) -> np.ndarray:
        """(len(rows), F) ids of rows, each taken from its mini-batch's id matrix."""
        sources: dict[int, tuple[Mapping[str, Sequence[str]], list[int], list[int]]] = {}
        for position, row in enumerate(rows):
            _, positions, indices = sources.setdefault(id(row.features), (row.features, [], []))
            positions.append(position)
            indices.append(row.index)
        out = np.empty((len(rows), self.n_fields), dtype=np.int64)
        for features, positions, indices in sources.values():
            ids = self.batch_ids(features)
            out[positions] = ids[indices] if features else ids[0]  # no column: all missing
        return out

    def batch_ids(self, features: Mapping[str, Sequence[str]]) -> np.ndarray:
        """The (B, F) ids of a mini-batch's feature columns; the one row of ids every row has
        where it has no column."""
        found = self._batch_ids.get(id(features))
        if found is None or found[0] is not features:
            first = next(iter(features.values()), None)
            ids = self.columns(features, n_rows=1 if first is None else len(first))
            found = self._batch_ids[id(features)] = (features, ids)
            if len(self._batch_ids) > self.batches:
                self._batch_ids.popitem(last=False)
        self._batch_ids.move_to_end(id(features))
        return found[1]
