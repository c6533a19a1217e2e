"""The evaluator's memoising featurizer: the ids of `model.features.Featurizer`, computed once."""

from __future__ import annotations

import numpy as np

from model.features import Featurizer, FeaturizerConfig
from ops.evaluation.featurizing import MemoFeaturizer
from ops.evaluation.finality import Row
from streaming.columns import CodedStrings

CONFIG = FeaturizerConfig(fields=("a", "b", "n"), numeric_fields=("n",), buckets=1 << 10)


def _rows(features: dict, indices: list[int]) -> list[Row]:
    return [
        Row(impression_id=f"{id(features)}-{i}", ts=0, label_ts=0, kind="final", conversion=0,
            offset=0, features=features, index=i)
        for i in indices
    ]  # fmt: skip


def test_rows_of_several_batches_get_the_plain_featurizer_ids() -> None:
    rng = np.random.default_rng(1)
    one = {"a": [f"x{v}" for v in rng.integers(0, 5, 40)], "n": [str(v) for v in range(40)]}
    two = {"a": CodedStrings(["p", "x1"], rng.integers(0, 2, 30)),
           "b": CodedStrings(["q"], np.zeros(30, dtype=np.intp))}  # fmt: skip
    rows = _rows(one, [3, 0, 39]) + _rows(two, [29, 0]) + _rows(one, [3, 7]) + _rows(two, [5])
    expected = [
        Featurizer(CONFIG).row({f: r.feature(f) for f in CONFIG.fields}) for r in rows
    ]  # a field a batch lacks is missing ("-1"), as Row.feature says
    memo = MemoFeaturizer(CONFIG, size=4, batches=1)  # forgets values and batches: same ids
    assert memo.row_ids(rows).tolist() == expected
    assert memo.row_ids(rows).tolist() == expected


def test_a_batch_matrix_is_computed_once_while_remembered() -> None:
    memo = MemoFeaturizer(CONFIG, batches=2)
    batch = {"a": ["x", "y"]}
    first = memo.batch_ids(batch)
    assert memo.batch_ids(batch) is first
    for other in ({"a": ["z"]}, {"a": ["w"]}):
        memo.batch_ids(other)
    assert memo.batch_ids(batch) is not first  # pushed out by two newer batches


def test_rows_of_a_batch_without_feature_columns_are_all_missing_whatever_their_index() -> None:
    memo = MemoFeaturizer(CONFIG)
    empty: dict = {}  # a mini-batch whose header names no feature field
    missing = [Featurizer(CONFIG).row({})]
    assert memo.row_ids(_rows(empty, [0, 1])).tolist() == missing * 2
    assert memo.row_ids(_rows(empty, [700, 3])).tolist() == missing * 2  # past the first call's
