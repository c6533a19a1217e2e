"""A string column as the wire carries it: its distinct values and one code per row.

A decoded mini-batch's feature columns stay in this form, so that featurizing hashes each
distinct value once and maps the rows with one numpy index (`model.features.Featurizer`
reads `distinct` and `codes`), and slicing a column copies codes, not strings.
It is a read-only sequence of str like the list it stands for.

>>> column = CodedStrings(["a", "b"], np.array([1, 0, 1]))
>>> list(column), column[2], len(column), column == ["b", "a", "b"]
(['b', 'a', 'b'], 'b', 3, True)
>>> list(column[1:])
['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np


class CodedStrings(Sequence[str]):
    """Rows of strings as `distinct[codes[i]]` (codes: an integer array, each < len(distinct))."""

    __slots__ = ("_values", "codes", "distinct")

    def __init__(self, distinct: list[str], codes: np.ndarray) -> None:
        self.distinct = distinct
        self.codes = codes
        self._values: list[str] | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> CodedStrings: ...
    def __getitem__(self, index: int | slice) -> str | CodedStrings:
        if isinstance(index, slice):
            return CodedStrings(self.distinct, self.codes[index])
        return self.distinct[self.codes[index]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return self.values() == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    def __repr__(self) -> str:
        return f"CodedStrings({self.values()!r})"

    def values(self) -> list[str]:
        """The rows as a list of str (built once)."""
        if self._values is None:
            self._values = [self.distinct[c] for c in self.codes.tolist()]
        return self._values
