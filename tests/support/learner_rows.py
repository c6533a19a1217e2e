"""Synthetic labeled mini-batches for the learner, trainer and evaluator tests, and a list source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.training.learner import LearnerConfig
from streaming.source import Message

FIELDS = ("f0", "f1", "f2")


@dataclass
class Rows:
    impression_ids: list[str]
    kinds: list[str]
    conv_types: list[str]
    scenarios: list[str]
    features: dict[str, list[str]]
    click: list[float]
    conversion: list[float]
    label_ts: list[int]
    watermark: int | None
    end: bool = False


def make_rows(start: int, n: int, *, seed: int = 0, kind: str = "negative") -> Rows:
    """n examples whose conversion depends on f0 (learnable), ids start.., label time = id."""
    rng = np.random.default_rng(seed + start)
    f0 = rng.integers(0, 10, n)
    conversion = (rng.random(n) < np.where(f0 < 3, 0.6, 0.05)).astype(float)
    ids = [str(start + i) for i in range(n)]
    return Rows(
        impression_ids=ids,
        kinds=[kind if c == 0 else "positive" for c in conversion],
        conv_types=[f"t{v}" for v in rng.integers(0, 3, n)],
        scenarios=[f"s{v}" for v in rng.integers(0, 2, n)],
        features={
            "f0": [str(v) for v in f0],
            "f1": [str(v) for v in rng.integers(0, 10, n)],
            "f2": [str(v) for v in rng.integers(0, 10, n)],
        },
        click=[1.0] * n,
        conversion=list(conversion),
        label_ts=[start + i for i in range(n)],
        watermark=start + n,
    )


def learner_config(**overrides) -> LearnerConfig:
    return LearnerConfig(
        model=overrides.pop("model", "mmn"),
        model_config=ModelConfig(n_fields=3, buckets=64, n_types=4, n_scenarios=3, hidden=(8,)),
        featurizer=FeaturizerConfig(fields=FIELDS, numeric_fields=(), buckets=64),
        **{"min_step_rows": 1, **overrides},
    )


class ListSource:
    """Partitions as lists of values; poll hands out a few messages at a time."""

    def __init__(self, partitions: dict[int, list[bytes]], chunk: int = 3) -> None:
        self.data = partitions
        self.chunk = chunk  # messages per partition and poll: a replay's "speed"
        self.position = dict.fromkeys(partitions, 0)

    def partitions(self) -> frozenset[int]:
        return frozenset(self.data)

    def seek(self, offsets: dict[str, int]) -> None:
        self.position = {p: offsets.get(str(p), 0) for p in self.data}

    def poll(self, timeout_s: float) -> list[Message]:
        out = []
        for p, values in self.data.items():
            start = self.position[p]
            for offset in range(start, min(start + self.chunk, len(values))):
                out.append(Message(partition=p, offset=offset, value=values[offset]))
            self.position[p] = min(start + self.chunk, len(values))
        return out

    def lag(self, offsets: dict[str, int]) -> int | None:
        return sum(len(v) - offsets.get(str(p), 0) for p, v in self.data.items())

    def close(self) -> None:
        pass
