"""Raw feature values to per-field integer ids, by a hash that is the same on every machine.

Python's built-in `hash` of a string is salted per process, so two processes (the trainer
and the evaluator, or today's run and tomorrow's) would disagree on every id. Ids here come
from BLAKE2b of ``"field=token"``, taken modulo the per-field bucket count, so they depend
only on the field name, the value and `buckets`.

Numeric fields (in the Criteo search log only ``nb_clicks_1week``) are bucketised before
hashing: a count of v becomes the token ``log2:k`` with k the bit length of v
(buckets 0 | 1 | 2-3 | 4-7 | ...),
and a negative value, the file's "missing", becomes ``missing``. Categorical values are
hashed as they are, their "-1" (missing) included: it is a value like any other.

>>> f = Featurizer(FeaturizerConfig(fields=("device_type", "nb_clicks_1week"), buckets=1000))
>>> f.row({"device_type": "7E56C27BFF0305E788DA55A029EC4988", "nb_clicks_1week": "5"})
[994, 992]
>>> f.row({"device_type": "7E56C27BFF0305E788DA55A029EC4988", "nb_clicks_1week": "6"})
[994, 992]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from model.errors import ModelConfigError

# The 18 feature fields of the Criteo sponsored search log that are not label leaks
# (product_price, SalesAmountInEuro and time_delay_for_conversion are; click_timestamp is time).
CRITEO_FEATURE_FIELDS: tuple[str, ...] = (
    "nb_clicks_1week",
    "product_age_group",
    "device_type",
    "audience_id",
    "product_gender",
    "product_brand",
    *(f"product_category{i}" for i in range(1, 8)),
    "product_country",
    "product_id",
    "product_title",
    "partner_id",
    "user_id",
)


@dataclass(frozen=True, kw_only=True)
class FeaturizerConfig:
    """Which fields become ids, and how.

    Attributes:
        fields: feature fields in model order (the F columns of Batch.ids); the Criteo 18 by
            default.
        numeric_fields: fields holding counts, bucketised by log2 before hashing.
        buckets: ids per field, equal to ModelConfig.buckets of the model they feed.
    """

    fields: tuple[str, ...] = CRITEO_FEATURE_FIELDS
    numeric_fields: tuple[str, ...] = ("nb_clicks_1week",)
    buckets: int = 1 << 17

    def __post_init__(self) -> None:
        if not self.fields or len(set(self.fields)) != len(self.fields):
            raise ModelConfigError(
                f"FeaturizerConfig.fields must be distinct names, got {self.fields}"
            )
        if self.buckets < 1:
            raise ModelConfigError(f"FeaturizerConfig.buckets must be >= 1, got {self.buckets}")

    def state(self) -> dict:
        """Plain-data form, for snapshots."""
        return {
            "fields": list(self.fields),
            "numeric_fields": list(self.numeric_fields),
            "buckets": self.buckets,
        }

    @staticmethod
    def from_state(state: Mapping) -> FeaturizerConfig:
        """The config whose `state()` this is."""
        return FeaturizerConfig(
            fields=tuple(state["fields"]),
            numeric_fields=tuple(state["numeric_fields"]),
            buckets=int(state["buckets"]),
        )


def field_ids(field: str, tokens: Iterable[str], buckets: int) -> list[int]:
    """The ids of one field's tokens: the 64-bit BLAKE2b of "field=token" (identical in every
    process, unlike `hash`), modulo buckets; the "field=" prefix is hashed once.

    >>> field_ids("device_type", ["1"], 2**64)
    [13056019853702387874]
    """
    prefix = hashlib.blake2b(f"{field}=".encode(), digest_size=8)
    out = []
    for token in tokens:
        digest = prefix.copy()
        digest.update(token.encode())
        out.append(int.from_bytes(digest.digest(), "little") % buckets)
    return out


def numeric_token(value: str) -> str:
    """The log2 bucket of a count, "missing" for a negative or empty value.

    >>> [numeric_token(v) for v in ("-1", "0", "1", "2", "3", "4", "1000")]
    ['missing', 'log2:0', 'log2:1', 'log2:2', 'log2:2', 'log2:3', 'log2:10']
    """
    try:
        number = float(value)
    except ValueError:
        return f"raw:{value}"  # not a number after all: keep it distinct rather than fail
    if not number >= 0:  # negative or NaN
        return "missing"
    return f"log2:{int(number).bit_length()}"  # 0 | 1 | 2-3 | 4-7 | ...


class Featurizer:
    """Maps raw string features to a (B, F) int64 id matrix, one column per configured field.

    A field absent from a row counts as missing ("-1"). Ids are in [0, buckets).
    """

    def __init__(self, config: FeaturizerConfig | None = None) -> None:
        self.config = config or FeaturizerConfig()
        self._numeric = frozenset(self.config.numeric_fields)

    @property
    def n_fields(self) -> int:
        return len(self.config.fields)

    def id(self, field: str, value: str) -> int:
        """The id of one raw value of one field."""
        token = numeric_token(value) if field in self._numeric else value
        return field_ids(field, [token], self.config.buckets)[0]

    def row(self, features: Mapping[str, str]) -> list[int]:
        """Ids of one record's features, in field order."""
        return [self.id(field, features.get(field, "-1")) for field in self.config.fields]

    def rows(self, records: Iterable[Mapping[str, str]]) -> np.ndarray:
        """(B, F) ids of many records (each a field -> raw value mapping)."""
        records = list(records)
        columns = {f: [r.get(f, "-1") for r in records] for f in self.config.fields}
        return self.columns(columns, n_rows=len(records))

    def columns(
        self, columns: Mapping[str, Sequence[str] | np.ndarray], *, n_rows: int | None = None
    ) -> np.ndarray:
        """(B, F) ids from column-wise raw values (lists, numpy arrays of str objects, or
        dictionary-coded columns: see `Coded`); each distinct value is hashed once.

        A field missing from `columns` is all-missing; then n_rows must say B if no column is given.
        """
        present = [c for f in self.config.fields if (c := columns.get(f)) is not None]
        n = len(present[0]) if present else n_rows
        if n is None:
            raise ModelConfigError(
                "Featurizer.columns needs n_rows when no configured field is given"
            )
        out = np.empty((n, self.n_fields), dtype=np.int64)
        for j, field in enumerate(self.config.fields):
            column = columns.get(field)
            if column is None:
                out[:, j] = self.id(field, "-1")
                continue
            if len(column) != n:
                raise ModelConfigError(
                    f"column {field!r} has {len(column)} values, expected {n} like the others"
                )
            # Real logs repeat values heavily: hash each distinct one once, then index.
            distinct, codes = coded(column)
            out[:, j] = self.table(field, distinct)[codes]
        return out

    def table(self, field: str, values: Sequence[str]) -> np.ndarray:
        """The ids of values of one field, in their order (`id` of each)."""
        tokens = map(numeric_token, values) if field in self._numeric else values
        return np.array(field_ids(field, tokens, self.config.buckets), dtype=np.int64)


class Coded(Protocol):
    """A dictionary-coded column (`streaming.columns.CodedStrings`): row i is distinct[codes[i]]."""

    distinct: Sequence[str]
    codes: np.ndarray


def coded(column: Sequence[str] | np.ndarray | Coded) -> tuple[Sequence[str], np.ndarray]:
    """A column's distinct values and its rows' codes into them.

    >>> distinct, codes = coded(["b", "a", "b"])
    >>> distinct, codes.tolist()
    (['b', 'a'], [0, 1, 0])
    """
    if hasattr(column, "codes"):  # cheaper than isinstance of a Protocol, per column
        found = cast(Coded, column)
        return found.distinct, found.codes
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault(v, len(index)) for v in column), dtype=np.intp, count=len(column)
    )
    return list(index), codes
