"""Property tests of the label rules against an independent statement of each policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.errors import StreamingError
from streaming.labels import ORPHAN_CONVERSION, LabelConfig, decide, horizon

OBS, A, CW = 50, 400, 30


def prescribed(click_ts: int, conv_ts: int | None, policy: str) -> set[tuple[str, int, int]]:
    """What the issue text prescribes for one click: {(kind, conversion, label_ts)}."""
    converted = conv_ts is not None and click_ts <= conv_ts <= click_ts + A
    if policy == "wait":
        return {("final", int(converted), click_ts + A)}
    if converted and conv_ts <= click_ts + OBS:
        return {("positive", 1, conv_ts)}
    out = {("negative", 0, click_ts + OBS)}
    if converted:
        out.add(("delayed-positive", 1, conv_ts))
    return out


@given(
    imp_ts=st.integers(0, 1000),
    click_delay=st.integers(0, CW),
    conv_delay=st.none() | st.integers(0, A + 100),
    policy=st.sampled_from(["fake-negative", "wait"]),
)
def test_each_click_ends_with_the_examples_its_policy_prescribes(
    imp_ts: int, click_delay: int, conv_delay: int | None, policy: str
) -> None:
    cfg = LabelConfig(
        policy=policy, observation_window_s=OBS, attribution_window_s=A, click_window_s=CW
    )
    click_ts = imp_ts + click_delay
    record = {"i": {"t": imp_ts}, "k": click_ts}
    conv_ts = None if conv_delay is None else click_ts + conv_delay
    if conv_ts is not None:
        record["c"] = conv_ts
    decisions = decide(record, "1", cfg)
    examples = {(d.name, d.conversion, d.label_ts) for d in decisions if d.is_example}
    assert examples == prescribed(click_ts, conv_ts, policy)
    orphans = [d for d in decisions if not d.is_example]
    outside = conv_ts is not None and conv_ts > click_ts + A
    assert [d.name for d in orphans] == ([ORPHAN_CONVERSION] if outside else [])
    assert [d.key for d in decisions] == sorted(d.key for d in decisions)
    assert horizon(record, "1", cfg) >= max(d.label_ts for d in decisions)


@given(imp_ts=st.integers(0, 1000), click_delay=st.none() | st.integers(CW + 1, 500))
def test_an_impression_without_a_click_in_its_window_is_a_non_click(
    imp_ts: int, click_delay: int | None
) -> None:
    cfg = LabelConfig(observation_window_s=OBS, attribution_window_s=A, click_window_s=CW)
    record: dict = {"i": {"t": imp_ts}}
    if click_delay is not None:
        record["k"] = imp_ts + click_delay
    names = [(d.name, d.label_ts) for d in decide(record, "1", cfg)]
    expected = [("non-click", imp_ts + CW)]
    if click_delay is not None:
        expected.append(("orphan-click", imp_ts + click_delay))
    assert sorted(names, key=lambda x: x[1]) == sorted(expected, key=lambda x: x[1])


def test_a_conversion_without_click_is_an_orphan() -> None:
    cfg = LabelConfig()
    assert [d.name for d in decide({"c": 10}, "9", cfg)] == [ORPHAN_CONVERSION]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"policy": "eager"},
        {"observation_window_s": 10, "attribution_window_s": 5},
        {"click_window_s": -1},
    ],
)
def test_invalid_configs_are_rejected(kwargs: dict) -> None:
    with pytest.raises(StreamingError):
        LabelConfig(**kwargs)
