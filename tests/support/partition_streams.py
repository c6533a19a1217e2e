"""The partition joiner's property tests' shared parts: funnels of events, their topic
streams interleaved, a joiner run over them, and what the labels prescribe."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from streaming.events import (
    Click,
    Conversion,
    EndOfStream,
    Heartbeat,
    Impression,
    encode_event,
)
from streaming.labels import LabelConfig
from streaming.partition_joiner import PartitionJoiner
from streaming.segments import BatchConfig, Segment

OBS, A, CW, L = 50, 400, 30, 20
Message = tuple[int, int, bytes]  # (source, offset, value)

funnels = st.lists(
    st.tuples(
        st.integers(0, 600),  # impression ts
        st.none() | st.integers(0, CW),  # click delay (None: not clicked)
        st.none() | st.integers(0, A + 60),  # conversion delay after the click
    ),
    max_size=30,
)


def topic_streams(rows: list, heartbeat_every: int = 0) -> list[list[tuple[int, bytes]]]:
    """Per source topic, (ts, value) in event-time order, ending with EndOfStream."""
    streams: list[list[tuple[int, bytes]]] = [[], [], []]
    end = 0
    for n, (ts, click_delay, conv_delay) in enumerate(rows):
        iid, user = f"i{n}", f"u{n % 3}"
        streams[0].append(
            (
                ts,
                Impression(
                    impression_id=iid,
                    user_id=user,
                    ts=ts,
                    conv_type=f"t{n % 2}",
                    scenario="s",
                    features={"f": str(n)},
                ),
            )
        )
        end = max(end, ts)
        if click_delay is not None:
            streams[1].append(
                (ts + click_delay, Click(impression_id=iid, user_id=user, ts=ts + click_delay))
            )
            if conv_delay is not None:
                conv_ts = ts + click_delay + conv_delay
                streams[2].append(
                    (conv_ts, Conversion(impression_id=iid, user_id=user, ts=conv_ts))
                )
                end = max(end, conv_ts)
    out = []
    for stream in streams:
        if heartbeat_every:
            stream += [(t, Heartbeat(ts=t)) for t in range(0, end, heartbeat_every)]
        stream.sort(key=lambda pair: pair[0])
        out.append(
            [(ts, encode_event(ev)) for ts, ev in stream]
            + [(end, encode_event(EndOfStream(ts=end)))]
        )
    return out


def interleave(
    streams: list[list[tuple[int, bytes]]], rng: random.Random, lateness: int
) -> list[Message]:
    """One arrival order: each topic disordered within `lateness`, topics merged at random."""
    per_topic = []
    for stream in streams:
        body, end = stream[:-1], stream[-1]
        jittered = sorted(body, key=lambda pair: pair[0] + rng.randint(0, lateness))
        per_topic.append([value for _, value in jittered] + [end[1]])
    cursors, out = [0, 0, 0], []
    while any(c < len(t) for c, t in zip(cursors, per_topic, strict=True)):
        source = rng.choice([s for s in range(3) if cursors[s] < len(per_topic[s])])
        out.append((source, cursors[source], per_topic[source][cursors[source]]))
        cursors[source] += 1
    return out


def run(
    messages: list[Message],
    labels: LabelConfig,
    store: dict | None = None,
    batches: BatchConfig | None = None,
) -> tuple[list[Segment], list]:
    joiner = PartitionJoiner(
        partition=0,
        store={} if store is None else store,
        labels=labels,
        batches=batches or BatchConfig(batch_size=4, max_span_s=100),
    )
    segments, letters = [], []
    for source, offset, value in messages:
        step = joiner.process(source, offset, value)
        letters += step.deadletters
        for segment in step.segments:
            segments.append(segment)
            joiner.commit(segment)
    assert joiner.done
    return segments, letters


def expected(rows: list, policy: str) -> set[tuple[str, str, int, int]]:
    """Directly from the rows: {(impression_id, kind, conversion, label_ts)}."""
    out = set()
    for n, (ts, click_delay, conv_delay) in enumerate(rows):
        iid = f"i{n}"
        if click_delay is None:
            out.add((iid, "non-click", 0, ts + CW))
            continue
        click = ts + click_delay
        conv = None if conv_delay is None or conv_delay > A else click + conv_delay
        if policy == "wait":
            out.add((iid, "final", int(conv is not None), click + A))
        elif conv is not None and conv <= click + OBS:
            out.add((iid, "positive", 1, conv))
        else:
            out.add((iid, "negative", 0, click + OBS))
            if conv is not None:
                out.add((iid, "delayed-positive", 1, conv))
    return out


def flat(segments: list[Segment]) -> list[tuple]:
    """Segments as comparable tuples; a dead letter's offset depends on arrival order, so not it."""
    return [
        (s.seq, s.watermark, s.end, s.examples, [(d.reason, d.value) for d in s.deadletters])
        for s in segments
    ]


def run_prefix(
    messages: list[Message], labels: LabelConfig, store: dict
) -> tuple[list[Segment], list]:
    joiner = PartitionJoiner(
        partition=0, store=store, labels=labels, batches=BatchConfig(batch_size=4, max_span_s=100)
    )
    segments = []
    for source, offset, value in messages:
        for segment in joiner.process(source, offset, value).segments:
            segments.append(segment)
            joiner.commit(segment)
        joiner.checkpoint()  # the consumer offset of this message may be committed now
    return segments, []
