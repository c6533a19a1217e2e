"""Delayed-feedback methods: weights on hand-computed batches, labels against the pure label logic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ops.errors import ConfigError
from ops.training import delayed
from ops.training.delayed.aux import DelayPrediction, delay_targets
from streaming.labels import LabelConfig, decide

OBS, A = 3600, 10 * 86_400
LABELS = LabelConfig(observation_window_s=OBS, attribution_window_s=A)

# One batch, one row per kind: label = click * conversion, p the model's, aux the delay model's.
KINDS = np.array(
    ["positive", "negative", "delayed-positive", "final", "delayed-final"], dtype=object
)
LABEL = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
P = torch.tensor([0.2, 0.1, 0.4, 0.3, 0.5])
AUX = DelayPrediction(dp=torch.tensor([0.1, 0.05, 0.3, 0.2, 0.6]), rn=torch.tensor([0.9] * 5))


def weights(name: str) -> list[float]:
    return [round(w, 4) for w in delayed.get(name).weights(KINDS, LABEL, P, AUX).tolist()]


def test_vanilla_wait_and_oracle_do_not_weight() -> None:
    for name in ("vanilla", "wait", "oracle"):
        assert weights(name) == [1.0] * 5


def test_fnw_weighs_positives_one_plus_p_and_negatives_one_minus_p_squared() -> None:
    # 1 + 0.2, (1 - 0.1)(1 + 0.1), 1 + 0.4, (1 - 0.3)(1 + 0.3), 1 + 0.5
    assert weights("fnw") == [1.2, 0.99, 1.4, 0.91, 1.5]


def test_esdfm_weighs_by_the_delay_model() -> None:
    # positives 1 + f_dp; negatives (1 + f_dp) * f_rn
    assert weights("es-dfm") == [1.1, round(1.05 * 0.9, 4), 1.3, round(1.2 * 0.9, 4), 1.6]


def test_defer_weighs_by_p_and_the_delay_model_capped_at_p() -> None:
    # positives p / (p - min(f_dp, p) / 2); negatives (1 - p) / (1 - p + min(f_dp, p) / 2)
    expected = [
        0.2 / (0.2 - 0.05),
        0.9 / (0.9 + 0.025),
        0.4 / (0.4 - 0.15),
        0.7 / (0.7 + 0.1),
        0.5 / (0.5 - 0.25),  # f_dp 0.6 > p 0.5: capped, weight 2
    ]
    assert weights("defer") == [round(w, 4) for w in expected]


@pytest.mark.parametrize(
    ("name", "click", "trains"),
    [
        ("vanilla", [1, 1, 0, 1, 1], [1, 1, 1, 1, 1]),
        ("fnw", [1, 1, 0, 1, 1], [1, 1, 1, 1, 1]),
        ("wait", [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]),
        ("es-dfm", [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]),
        ("defer", [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]),
    ],
)
def test_copies_of_a_click_weigh_nothing_in_the_click_term(name, click, trains) -> None:
    method = delayed.get(name)
    assert method.click_weights(KINDS).tolist() == click
    assert method.trains(KINDS).astype(int).tolist() == trains


def test_the_delay_model_learns_each_click_once_from_its_final_rows() -> None:
    dp, dp_mask, rn, rn_mask = delay_targets(KINDS, LABEL.numpy().astype(int))
    assert dp_mask.tolist() == [0, 0, 0, 1, 1] and dp.tolist() == [0, 0, 0, 0, 1]
    assert rn_mask.tolist() == [0, 0, 0, 1, 1] and rn.tolist() == [0, 0, 0, 1, 0]


def test_an_unknown_method_and_the_oracle_in_a_joiner_are_refused() -> None:
    with pytest.raises(ConfigError, match="choose one of vanilla"):
        delayed.get("plain")
    with pytest.raises(ConfigError, match="bench"):
        delayed.get("oracle").labels(LABELS)


def expected_emission(click: int, conv: int | None, method: str) -> set[tuple[str, int, int]]:
    """(kind, conversion, label_ts) of one click, written from the papers' descriptions."""
    window = 0 if method == "fnw" else OBS
    converted = conv is not None and conv <= click + A
    if method == "oracle":
        return {("final", int(converted), click)}
    if method == "wait":
        return {("final", int(converted), click + A)}
    if converted and conv <= click + window:
        out = {("positive", 1, conv)}
        copy = ("final", 1, click + A)
    elif converted:
        out = {("negative", 0, click + window), ("delayed-positive", 1, conv)}
        copy = ("delayed-final", 1, click + A)
    else:
        out = {("negative", 0, click + window)}
        copy = ("final", 0, click + A)
    return out | {copy} if method in ("es-dfm", "defer") else out


@pytest.mark.parametrize("method", delayed.names())
def test_each_method_emits_what_the_label_logic_decides(method: str) -> None:
    rng = np.random.default_rng(7)
    for i in range(400):
        click = int(rng.integers(0, 10**6))
        delay = [None, int(rng.integers(0, 2 * OBS)), int(rng.integers(0, 2 * A))][i % 3]
        record: dict = {"i": {"t": click - 5}, "k": click}
        if delay is not None:
            record["c"] = click + delay
        got = delayed.get(method).decisions(record, str(i), LABELS)
        emitted = {(d.name, d.conversion, d.label_ts) for d in got if d.is_example}
        converted = None if delay is None or delay > A else click + delay
        assert emitted == expected_emission(click, converted, method), (method, click, delay)
        if method != "oracle":
            expected = decide(record, str(i), delayed.get(method).labels(LABELS))
            assert got == expected
