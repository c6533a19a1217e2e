"""The dictionary-coded string column of decoded mini-batches."""

from __future__ import annotations

import numpy as np
import pytest

from streaming.columns import CodedStrings


def test_it_reads_like_the_list_it_stands_for() -> None:
    values = ["b", "a", "b", "c", "a"]
    column = CodedStrings(["b", "a", "c"], np.array([0, 1, 0, 2, 1]))
    assert list(column) == values and column == values and len(column) == 5
    assert [column[i] for i in range(5)] == values and column[-1] == "a"
    assert column[1:4] == values[1:4] and isinstance(column[1:4], CodedStrings)
    assert column != ["b"] and column != "babca"
    with pytest.raises(IndexError):
        column[5]
    with pytest.raises(TypeError):
        hash(column)


def test_an_empty_column_is_an_empty_sequence() -> None:
    column = CodedStrings([], np.array([], dtype=np.intp))
    assert len(column) == 0 and list(column) == [] and column == []
