"""Stable hashing of raw features to per-field ids."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from model.errors import ModelConfigError
from model.features import CRITEO_FEATURE_FIELDS, Featurizer, FeaturizerConfig, numeric_token


def test_ids_are_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from model.features import Featurizer;"
        "print(Featurizer().row({'user_id': 'ABC', 'product_id': 'X', 'nb_clicks_1week': '3'}))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    here = Featurizer().row({"user_id": "ABC", "product_id": "X", "nb_clicks_1week": "3"})
    assert outs == {f"{here}\n"}


def test_the_criteo_fields_are_the_18_non_leak_columns() -> None:
    assert len(CRITEO_FEATURE_FIELDS) == 18
    assert not {"product_price", "SalesAmountInEuro", "Sale", "click_timestamp"} & set(
        CRITEO_FEATURE_FIELDS
    )


def test_same_value_in_different_fields_gets_independent_ids() -> None:
    f = Featurizer(FeaturizerConfig(fields=("a", "b"), numeric_fields=(), buckets=1 << 30))
    a, b = f.row({"a": "v", "b": "v"})
    assert a != b


def test_numeric_fields_are_bucketised_by_log2() -> None:
    assert numeric_token("4") == numeric_token("7") != numeric_token("8")
    assert numeric_token("-1") == "missing"
    f = Featurizer(FeaturizerConfig(fields=("n",), numeric_fields=("n",), buckets=1 << 20))
    assert f.row({"n": "4"}) == f.row({"n": "7"}) != f.row({"n": "9"})


def test_rows_and_columns_agree_and_absent_fields_are_missing() -> None:
    f = Featurizer(FeaturizerConfig(fields=("a", "n"), numeric_fields=("n",), buckets=97))
    records = [{"a": "x", "n": "3"}, {"a": "y"}, {"n": "-1"}]
    ids = f.rows(records)
    assert ids.shape == (3, 2) and ids.dtype == np.int64
    assert ((ids >= 0) & (ids < 97)).all()
    assert ids.tolist() == [f.row(r) for r in records]
    assert ids[1, 1] == ids[2, 1] == f.id("n", "-1")
    assert ids[2, 0] == f.id("a", "-1")


def test_columns_reject_ragged_input() -> None:
    f = Featurizer(FeaturizerConfig(fields=("a", "b"), numeric_fields=()))
    with pytest.raises(ModelConfigError, match="'b' has 1 values"):
        f.columns({"a": ["1", "2"], "b": ["1"]})


def test_config_round_trips_through_plain_state() -> None:
    config = FeaturizerConfig(fields=("a", "b"), numeric_fields=("b",), buckets=5)
    assert FeaturizerConfig.from_state(config.state()) == config


def test_200k_rows_by_18_fields_hash_fast() -> None:
    # 1M x 18 must take well under a minute; 200k rows here keep the test quick.
    rng = np.random.default_rng(0)
    n = 200_000
    columns = {
        field: rng.integers(0, 5000, n).astype(str).tolist() for field in CRITEO_FEATURE_FIELDS
    }
    start = time.perf_counter()
    ids = Featurizer().columns(columns)
    assert ids.shape == (n, 18)
    assert time.perf_counter() - start < 8.0


class _Coded:
    """A dictionary-coded column as `streaming.columns.CodedStrings` is (model imports no streaming)."""

    def __init__(self, distinct: list[str], codes: list[int]) -> None:
        self.distinct, self.codes = distinct, np.array(codes, dtype=np.intp)

    def __len__(self) -> int:
        return len(self.codes)


def test_coded_columns_get_the_ids_of_their_values() -> None:
    f = Featurizer(FeaturizerConfig(fields=("a", "n"), numeric_fields=("n",), buckets=97))
    plain = {"a": ["x", "y", "x", ""], "n": ["3", "-1", "3", "70"]}
    coded = {"a": _Coded(["y", "x", "", "unused"], [1, 0, 1, 2]),
             "n": _Coded(["70", "3", "-1"], [1, 2, 1, 0])}  # fmt: skip
    assert (
        f.columns(coded).tolist()
        == f.columns(plain).tolist()
        == f.rows(
            [dict(zip(plain, values, strict=True)) for values in zip(*plain.values(), strict=True)]
        ).tolist()
    )


def test_a_field_table_equals_the_id_of_each_value() -> None:
    f = Featurizer(FeaturizerConfig(fields=("a", "n"), numeric_fields=("n",), buckets=1 << 17))
    for field, values in (("a", ["x", "", "ü", "-1"]), ("n", ["0", "5", "-1", "z"])):
        assert f.table(field, values).tolist() == [f.id(field, v) for v in values]
