"""Domain vocabularies: top-K, "other" at 0, bounded online growth, plain-data state."""

from __future__ import annotations

import numpy as np
import pytest

from model.errors import ModelConfigError
from model.vocab import MIN_COUNT, DomainVocab
from streaming.events import OTHER_DOMAIN


def test_top_k_keeps_the_most_frequent_with_ties_broken_by_value() -> None:
    vocab = DomainVocab.top_k({"x": 5, "b": 3, "a": 3, "z": 1}, k=3, other=OTHER_DOMAIN)
    assert vocab.values == [OTHER_DOMAIN, "x", "a", "b"]
    assert vocab.capacity == 4
    assert vocab.index("z") == 0


def test_unseen_and_overflow_values_map_to_other() -> None:
    vocab = DomainVocab(3, ["t1"], other=OTHER_DOMAIN)
    assert vocab.index("unknown") == 0
    assert vocab.add("t2") == 2
    assert vocab.add("t3") == 0  # full: overflow goes to "other"
    assert vocab.add("t1") == 1
    assert len(vocab) == 3
    assert vocab.indices(["t2", "t3", "t1"]).tolist() == [2, 0, 1]


def test_other_cannot_be_added_as_a_value() -> None:
    vocab = DomainVocab(4, other=OTHER_DOMAIN)
    assert vocab.add(OTHER_DOMAIN) == 0 and len(vocab) == 1


def test_construction_with_more_values_than_capacity_fails() -> None:
    with pytest.raises(ModelConfigError, match="raise the capacity"):
        DomainVocab(2, ["a", "b"], other=OTHER_DOMAIN)


def test_state_is_plain_lists_and_round_trips() -> None:
    vocab = DomainVocab.top_k(["a", "a", "b"], k=2, capacity=5, other=OTHER_DOMAIN)
    state = vocab.state()
    assert state == {
        "capacity": 5,
        "values": [OTHER_DOMAIN, "a", "b"],
        "min_count": MIN_COUNT,
        "sketch_size": 64,
        "counts": {},
    }
    back = DomainVocab.from_state(state)
    assert back.values == vocab.values and back.capacity == 5
    assert back.add("c") == 3


def test_state_without_other_first_is_rejected() -> None:
    with pytest.raises(ModelConfigError, match="start with its `other` value"):
        DomainVocab.from_state({"capacity": 3, "values": []})


def test_a_readers_other_takes_slot_0_so_top_k_plus_one_holds_every_domain() -> None:
    # A reader's domains: its top-K values, then OTHER_DOMAIN for the rest.
    reader_values = [*(f"t{i}" for i in range(20)), OTHER_DOMAIN]
    vocab = DomainVocab(len(reader_values), other=OTHER_DOMAIN)
    indices = [vocab.add(value) for value in reader_values]
    assert indices == [*range(1, 21), 0]
    assert len(vocab) == 21 == vocab.capacity


def test_a_tail_first_stream_leaves_the_slots_to_the_frequent_values() -> None:
    # 60 rare values open the stream (5 rows each), then three head values arrive mixed with
    # more rare ones: first come would have given every slot to a rare value.
    rng = np.random.default_rng(0)
    tail = [f"rare{i}" for i in range(60) for _ in range(5)]
    head = ["a"] * 900 + ["b"] * 600 + ["c"] * 300 + [f"rare{i}" for i in range(60, 360)]
    rng.shuffle(head)
    stream = tail + head
    vocab = DomainVocab(4, other=OTHER_DOMAIN, min_count=50)
    for start in range(0, len(stream), 37):
        vocab.observe(stream[start : start + 37])
    assert sorted(vocab.values[1:]) == ["a", "b", "c"]


def test_a_full_vocabulary_never_reassigns_a_slot() -> None:
    vocab = DomainVocab(2, other=OTHER_DOMAIN, min_count=2)
    vocab.observe(["early", "early"])
    vocab.observe(["late"] * 1000)
    assert vocab.values == [OTHER_DOMAIN, "early"]
    assert vocab.index("late") == 0


def test_lookups_never_change_the_vocabulary_and_the_sketch_round_trips() -> None:
    vocab = DomainVocab(5, other=OTHER_DOMAIN, min_count=3)
    vocab.observe(["x", "x", "x", "y"])
    state = vocab.state()
    assert vocab.indices(["z", "z", "z", "y"]).tolist() == [0, 0, 0, 0]
    assert vocab.index("y") == 0 and vocab.state() == state
    back = DomainVocab.from_state(state)
    back.observe(["y", "y"])
    assert back.index("y") == 2  # its earlier count was kept
