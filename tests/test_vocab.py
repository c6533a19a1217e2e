"""Domain vocabularies: top-K, "other" at 0, bounded online growth, plain-data state."""

from __future__ import annotations

import pytest

from model.errors import ModelConfigError
from model.vocab import OTHER, DomainVocab


def test_top_k_keeps_the_most_frequent_with_ties_broken_by_value() -> None:
    vocab = DomainVocab.top_k({"x": 5, "b": 3, "a": 3, "z": 1}, k=3)
    assert vocab.values == [OTHER, "x", "a", "b"]
    assert vocab.capacity == 4
    assert vocab.index("z") == 0


def test_unseen_and_overflow_values_map_to_other() -> None:
    vocab = DomainVocab(3, ["t1"])
    assert vocab.index("unknown") == 0
    assert vocab.add("t2") == 2
    assert vocab.add("t3") == 0  # full: overflow goes to "other"
    assert vocab.add("t1") == 1
    assert len(vocab) == 3
    assert vocab.indices(["t2", "t3", "t1"]).tolist() == [2, 0, 1]


def test_other_cannot_be_added_as_a_value() -> None:
    vocab = DomainVocab(4)
    assert vocab.add(OTHER) == 0 and len(vocab) == 1


def test_construction_with_more_values_than_capacity_fails() -> None:
    with pytest.raises(ModelConfigError, match="raise the capacity"):
        DomainVocab(2, ["a", "b"])


def test_state_is_plain_lists_and_round_trips() -> None:
    vocab = DomainVocab.top_k(["a", "a", "b"], k=2, capacity=5)
    state = vocab.state()
    assert state == {"capacity": 5, "values": [OTHER, "a", "b"]}
    back = DomainVocab.from_state(state)
    assert back.values == vocab.values and back.capacity == 5
    assert back.add("c") == 3


def test_state_without_other_first_is_rejected() -> None:
    with pytest.raises(ModelConfigError):
        DomainVocab.from_state({"capacity": 3, "values": ["a"]})
