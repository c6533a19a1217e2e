"""Property tests of the partition joiner with a dict store: completeness, order, restarts."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from partition_streams import (
    CW,
    OBS,
    A,
    L,
    expected,
    flat,
    funnels,
    interleave,
    run,
    run_prefix,
    topic_streams,
)

from streaming.labels import LabelConfig


@settings(max_examples=60, deadline=None)
@given(
    rows=funnels,
    policy=st.sampled_from(["fake-negative", "wait"]),
    seeds=st.tuples(st.integers(), st.integers()),
)
def test_output_is_prescribed_and_independent_of_interleaving_within_lateness(
    rows: list, policy: str, seeds: tuple[int, int]
) -> None:
    labels = LabelConfig(
        policy=policy,
        observation_window_s=OBS,
        attribution_window_s=A,
        click_window_s=CW,
        allowed_lateness_s=L,
    )
    streams = topic_streams(rows, heartbeat_every=37)
    first, letters = run(interleave(streams, random.Random(seeds[0]), L), labels)
    second, _ = run(interleave(streams, random.Random(seeds[1]), L), labels)
    assert flat(first) == flat(second)
    got = [(e.impression_id, e.kind, e.conversion, e.label_ts) for s in first for e in s.examples]
    assert len(got) == len(set(got))
    assert set(got) == expected(rows, policy)
    assert [e for s in first for e in s.examples] == sorted(
        (e for s in first for e in s.examples), key=lambda e: e.label_ts
    )
    late_conversions = sum(1 for _, c, v in rows if c is not None and v is not None and v > A)
    orphans = [d for s in first for d in s.deadletters]
    assert [d.reason for d in orphans] == ["orphan-conversion"] * late_conversions
    assert letters == []
    assert all(len(s.examples) <= 4 for s in first)


@settings(max_examples=60, deadline=None)
@given(rows=funnels, seed=st.integers(), crash_at=st.floats(0, 1), replay_from=st.floats(0, 1))
def test_a_restart_from_the_store_repeats_only_exact_copies(
    rows: list, seed: int, crash_at: float, replay_from: float
) -> None:
    labels = LabelConfig(
        observation_window_s=OBS, attribution_window_s=A, click_window_s=CW, allowed_lateness_s=L
    )
    messages = interleave(topic_streams(rows, heartbeat_every=37), random.Random(seed), L)
    reference, _ = run(messages, labels)
    # Crash after `cut` messages: the store keeps what was written; redelivery restarts
    # at an earlier message (the last committed consumer offset).
    cut = int(crash_at * len(messages))
    store: dict = {}
    before, _ = run_prefix(messages[:cut], labels, store)
    restart = int(replay_from * cut)
    after, _ = run(messages[restart:], labels, store)
    by_seq = {s.seq: s for s in reference if s.seq is not None}
    for segment in before + after:
        if segment.seq is not None:
            assert flat([segment]) == flat([by_seq[segment.seq]])
    assert {s.seq for s in before + after if s.seq is not None} == set(by_seq)
