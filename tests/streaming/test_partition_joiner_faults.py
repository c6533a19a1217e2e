"""The partition joiner on bad input, with a dict store: dead letters for what cannot be joined
(no value, duplicates, malformed, late, too large), and events far from the log's clock."""

from __future__ import annotations

import dataclasses
import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from partition_streams import (
    CW,
    OBS,
    A,
    Message,
    expected,
    flat,
    funnels,
    interleave,
    run,
    topic_streams,
)

from streaming.events import (
    MAX_EVENT_TS,
    Click,
    Conversion,
    EndOfStream,
    Heartbeat,
    Impression,
    decode_event,
    encode_event,
)
from streaming.example import (
    decode_deadletter,
    decode_example,
    encode_deadletter,
    encode_example,
)
from streaming.labels import LabelConfig
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch
from streaming.partition_joiner import PartitionJoiner
from streaming.segments import BatchConfig


def test_a_message_without_a_value_is_a_dead_letter() -> None:
    joiner = PartitionJoiner(partition=0, store={})
    step = joiner.process(1, 0, None)
    assert [(d.reason, d.detail, d.topic, d.offset, d.value) for d in step.deadletters] == [
        ("malformed", "no value", "clicks", 0, b"")
    ]


def test_duplicates_malformed_and_late_events_are_dead_letters() -> None:
    labels = LabelConfig(observation_window_s=OBS, attribution_window_s=A, click_window_s=CW)
    imp = encode_event(
        Impression(impression_id="a", user_id="u", ts=100, conv_type="t", scenario="s")
    )
    click = encode_event(Click(impression_id="a", user_id="u", ts=100))
    messages = [
        (0, 0, imp),
        (0, 1, imp),
        (1, 0, click),
        (1, 1, click),
        (2, 0, b"{not json"),
        (2, 1, encode_event(Click(impression_id="a", user_id="u", ts=100))),
        (0, 2, encode_event(Heartbeat(ts=500))),
        (1, 2, encode_event(Heartbeat(ts=500))),
        (2, 2, encode_event(Heartbeat(ts=500))),
        (2, 3, encode_event(Conversion(impression_id="a", user_id="u", ts=120))),
        (0, 3, encode_event(EndOfStream(ts=500))),
        (1, 3, encode_event(EndOfStream(ts=500))),
        (2, 4, encode_event(EndOfStream(ts=500))),
    ]
    segments, letters = run(messages, labels)
    assert [(d.reason, d.topic, d.offset) for d in letters] == [
        ("duplicate-impression", "impressions", 1),
        ("duplicate-click", "clicks", 1),
        ("malformed", "conversions", 0),
        ("malformed", "conversions", 1),
        ("late-event", "conversions", 3),
    ]
    assert letters[0].value == imp
    assert [(e.kind, e.conversion) for s in segments for e in s.examples] == [("negative", 0)]


# Arbitrary field values: huge, negative, NaN, unicode (lone surrogates too), wrong types.
_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_ids = st.sampled_from(["i0", "i1", "i2", "~meta/0"]) | _anything
_times = st.integers(0, 300) | st.sampled_from([-1, 1_597_000_000_000, 2**63, 2**64]) | _anything
_kinds = st.sampled_from(["impression", "click", "conversion", "heartbeat", "end"]) | _anything


@st.composite
def _payloads(draw: st.DrawFn) -> bytes | None:
    """One message value: a tombstone, raw bytes, or a JSON object of arbitrary fields."""
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return None
    if shape == 1:
        return draw(st.binary(max_size=40))
    fields = {
        "v": draw(st.just(1) | _anything),
        "event": draw(_kinds),
        "impression_id": draw(_ids),
        "user_id": draw(st.just("u") | _anything),
        "ts": draw(_times),
        "conv_type": draw(st.just("t") | _anything),
        "scenario": draw(st.just("s") | _anything),
        "features": draw(
            st.just({"f": "1"}) | st.dictionaries(st.text(max_size=3), _anything, max_size=2)
        ),
        "amount": draw(st.just(1.5) | _anything),
    }
    dropped = draw(st.sets(st.sampled_from(sorted(fields)), max_size=2)) if shape == 2 else set()
    payload = {k: v for k, v in fields.items() if k not in dropped}
    return json.dumps(payload).encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), _payloads()), max_size=25))
def test_any_input_ends_as_output_or_dead_letter_and_nothing_raises(messages: list) -> None:
    joiner = PartitionJoiner(
        partition=0,
        store={},
        labels=LabelConfig(
            observation_window_s=OBS, attribution_window_s=A, click_window_s=CW, max_ahead_s=500
        ),
        batches=BatchConfig(batch_size=4, max_span_s=100),
    )
    offsets = [0, 0, 0]
    inputs = []  # (source, offset, value)
    for source, value in messages:
        inputs.append((source, offsets[source], value))
        offsets[source] += 1
    inputs += [(s, offsets[s], encode_event(EndOfStream(ts=0))) for s in range(3)]
    examples: list = []
    letters: list = []
    for source, offset, value in inputs:
        step = joiner.process(source, offset, value)
        letters += step.deadletters
        for segment in step.segments:
            if segment.seq is not None:  # every segment encodes for the topics
                batch = MiniBatch.from_examples(
                    segment.examples,
                    partition=0,
                    seq=segment.seq,
                    watermark=segment.watermark,
                    end=segment.end,
                )
                filled = [  # a field a row lacks comes back as ""
                    dataclasses.replace(
                        e, features={f: e.features.get(f, "") for f in batch.features}
                    )
                    for e in segment.examples
                ]
                assert decode_minibatch(encode_minibatch(batch)).examples() == filled
            examples += segment.examples
            letters += segment.deadletters
            joiner.commit(segment)
        assert joiner.watermark in (-math.inf, math.inf) or joiner.watermark <= MAX_EVENT_TS
    assert joiner.done
    for letter in letters:
        assert decode_deadletter(encode_deadletter(letter)) == letter
    for example in examples:
        assert decode_example(encode_example(example)) == example
    lettered = {(d.topic, d.offset) for d in letters}
    topics = ("impressions", "clicks", "conversions")
    for source, offset, value in inputs:
        if (topics[source], offset) in lettered:
            continue
        event = decode_event(value)  # not a dead letter: it decoded, and as its topic's kind
        if isinstance(event, Heartbeat | EndOfStream):
            continue
        assert isinstance(event, (Impression, Click, Conversion)[source])
        mine = [e for e in examples if e.impression_id == event.impression_id]
        if source == 0:
            assert mine, f"impression {event} vanished"
        elif source == 1:
            assert any(e.click for e in mine), f"click {event} vanished"
        else:
            assert any(e.conversion for e in mine), f"conversion {event} vanished"


def _with_first(streams: list, source: int, event: Impression | Click) -> list:
    """The topic streams with `event` first on its topic, whatever its time (sorted first)."""
    out = [list(stream) for stream in streams]
    out[source].insert(0, (-1, encode_event(event)))
    return out


@settings(max_examples=40, deadline=None)
@given(
    rows=funnels,
    ahead=st.sampled_from([10_000, 45 * 86_400]),
    seeds=st.tuples(st.integers(), st.integers()),
)
def test_one_event_far_ahead_first_on_its_topics_moves_no_clock(
    rows: list, ahead: int, seeds: tuple[int, int]
) -> None:
    """Issue 19, finding 6: an impression and its click dated far ahead, published on empty
    topics before the log, set their topics' clocks; real events then became late-event
    and orphan-click depending on how the topics interleaved."""
    labels = LabelConfig(
        observation_window_s=OBS, attribution_window_s=A, click_window_s=CW, max_ahead_s=500
    )
    streams = topic_streams(rows, heartbeat_every=37)
    imp = Impression(
        impression_id="future", user_id="x", ts=ahead, conv_type="t", scenario="s", features={}
    )
    streams = _with_first(streams, 0, imp)
    streams = _with_first(streams, 1, Click(impression_id="future", user_id="x", ts=ahead))
    first, letters = run(interleave(streams, random.Random(seeds[0]), 0), labels)
    second, _ = run(interleave(streams, random.Random(seeds[1]), 0), labels)
    assert flat(first) == flat(second)
    got = [(e.impression_id, e.kind, e.conversion, e.label_ts) for s in first for e in s.examples]
    assert sorted(got) == sorted(
        expected(rows, "fake-negative") | {("future", "negative", 0, ahead + OBS)}
    )
    assert got[-1][0] == "future"  # decided at the end of stream: no real time got there
    assert letters == []
    late_conversions = sum(1 for _, c, v in rows if c is not None and v is not None and v > A)
    assert [d.reason for s in first for d in s.deadletters] == [
        "orphan-conversion"
    ] * late_conversions


@settings(max_examples=30, deadline=None)
@given(rows=funnels, seed=st.integers())
def test_one_event_far_behind_first_on_its_topic_moves_no_clock(rows: list, seed: int) -> None:
    """The mirror case: an impression dated far back, first on its topic, must not become the
    clock against which every later event is `implausible-time`. Without heartbeats, real
    neighbours may be up to ~1,100 s apart here (impressions over 600 s, conversions up to
    A + 60 after their click), so --max-ahead is above that and far below the 5,000 s the
    past event lies back."""
    labels = LabelConfig(
        observation_window_s=OBS, attribution_window_s=A, click_window_s=CW, max_ahead_s=1500
    )
    shifted = [(ts + 5000, click, conv) for ts, click, conv in rows]
    past = Impression(
        impression_id="past", user_id="x", ts=0, conv_type="t", scenario="s", features={}
    )
    streams = _with_first(topic_streams(shifted), 0, past)  # no heartbeat to lean on
    segments, letters = run(interleave(streams, random.Random(seed), 0), labels)
    got = {
        (e.impression_id, e.kind, e.conversion, e.label_ts) for s in segments for e in s.examples
    }
    assert got == expected(shifted, "fake-negative") | {("past", "non-click", 0, CW)}
    assert letters == []


def test_an_event_too_large_to_send_is_a_dead_letter_with_its_size_and_first_bytes() -> None:
    batches = BatchConfig(batch_size=4, max_span_s=100, max_message_bytes=65_536)
    joiner = PartitionJoiner(partition=0, store={}, batches=batches)
    big = Impression(
        impression_id="big", user_id="u", ts=10, conv_type="t", scenario="s",
        features={"f": "x" * batches.event_bytes},
    )  # fmt: skip
    value = encode_event(big)
    step = joiner.process(0, 0, value)
    [letter] = step.deadletters
    assert (letter.reason, letter.topic, letter.offset, letter.size) == (
        "too-large",
        "impressions",
        0,
        len(value),
    )
    assert letter.value == value[:1024] and f"{len(value):,} bytes" in letter.detail
    assert len(encode_deadletter(letter)) < 4096
    assert "big" not in joiner.store  # consumed, not joined: nothing of it is ever sent
    fits = dataclasses.replace(big, features={"f": "x" * (batches.event_bytes - 200)})
    assert joiner.process(0, 1, encode_event(fits)).deadletters == []


def test_a_mini_batch_is_cut_before_it_outgrows_the_largest_message() -> None:
    batches = BatchConfig(batch_size=1000, max_span_s=10**6, max_message_bytes=65_536)
    labels = LabelConfig(observation_window_s=OBS, attribution_window_s=A, click_window_s=CW)
    rows = 120
    messages: list[Message] = []
    for n in range(rows):  # distinct values: the dictionary encoding saves nothing
        imp = Impression(
            impression_id=f"i{n}", user_id="u", ts=n, conv_type="t", scenario="s",
            features={"a": f"{n:04d}" + "y" * 1500, f"only{n % 7}": "z"},
        )  # fmt: skip
        messages.append((0, n, encode_event(imp)))
    messages += [(s, rows if s == 0 else 0, encode_event(EndOfStream(ts=rows))) for s in range(3)]
    segments, letters = run(messages, labels, batches=batches)
    sizes = []
    for segment in segments:
        batch = MiniBatch.from_examples(
            segment.examples, partition=0, seq=segment.seq or 0, watermark=segment.watermark,
            end=segment.end,
        )  # fmt: skip
        sizes.append(len(encode_minibatch(batch)))
    assert letters == []
    assert [e.impression_id for s in segments for e in s.examples] == [f"i{n}" for n in range(rows)]
    assert max(sizes) <= batches.minibatch_bytes
    assert len(segments) == 4 and min(sizes[:-1]) > batches.minibatch_bytes - 3000  # full ones
