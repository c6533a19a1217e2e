"""The deduper: re-emitted (impression_id, kind) pairs dropped, memory bounded by the horizon."""

from __future__ import annotations

from ops.training.dedupe import BUCKET_S, Deduper


def test_a_reemitted_example_is_dropped_but_another_kind_of_the_same_impression_is_not() -> None:
    deduper = Deduper(horizon_s=3600)
    first = deduper.admit(["i1", "i2"], ["negative", "negative"], [100, 100])
    again = deduper.admit(
        ["i1", "i1", "i2"], ["negative", "delayed-positive", "negative"], [100, 5000, 100]
    )
    assert first.tolist() == [True, True]
    assert again.tolist() == [False, True, False]
    assert deduper.dropped == 2


def test_copies_inside_one_batch_are_dropped() -> None:
    assert Deduper().admit(["a", "a"], ["positive", "positive"], [1, 1]).tolist() == [True, False]


def test_keys_older_than_the_horizon_are_forgotten() -> None:
    deduper = Deduper(horizon_s=2 * BUCKET_S)
    for hour in range(10):
        deduper.admit([f"h{hour}"], ["negative"], [hour * BUCKET_S])
        deduper.expire(hour * BUCKET_S)
    assert len(deduper) <= 4  # only the buckets within the horizon of the watermark remain
    assert deduper.admit(["h9"], ["negative"], [9 * BUCKET_S]).tolist() == [False]


def test_the_state_round_trips() -> None:
    deduper = Deduper(horizon_s=100)
    deduper.admit(["a", "b", "a"], ["negative", "negative", "negative"], [5, 7000, 5])
    restored = Deduper.from_state(deduper.state())
    assert restored.dropped == 1 and len(restored) == 2
    assert restored.admit(["a", "b", "c"], ["negative"] * 3, [5, 7000, 9]).tolist() == [
        False,
        False,
        True,
    ]
