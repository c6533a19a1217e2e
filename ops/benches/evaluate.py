"""`mmn bench evaluate`: the A/B evaluator's examples/s per arm next to the model's own forward pass.

One synthetic stream of clicks (random Criteo-like raw features: 18 fields, the Criteo
reader's default 20 conversion types and 16 scenarios and the model capacities that go
with them, the joiner's mini-batch encoding, one partition) is evaluated by the real
evaluator (decode, final labels, assignment, read-only featurising and scoring,
writes to a SQLite registry) with two arms in shadow mode, both serving an MMN snapshot
at the paper's sizes. Next to it, in the same run, the model's batched forward pass over
the same examples, already featurised, in chunks of the evaluator's size. The ratio of
the two is the evaluator's efficiency (target >= 0.7).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model.config import ModelConfig
from model.features import CRITEO_FEATURE_FIELDS
from ops.evaluation.evaluator import Evaluator
from ops.evaluation.experiment import EvaluatorConfig
from ops.evaluation.serving import SCORE_CHUNK, ModelCache, predict, tensor_batch
from ops.options.bench import BenchOptions
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry
from ops.options.values import Count, OptionalCount
from ops.store.database import open_registry
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import LearnerConfig, OnlineLearner
from simulator.criteo_search import CriteoSearchConfig
from streaming.example import Example
from streaming.labels import LabelConfig
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch
from streaming.source import Message

ARMS = (("control", "bench-a"), ("treatment", "bench-b"))  # both serve an MMN snapshot
SEARCH = CriteoSearchConfig()  # the domains of the stream: the Criteo reader's defaults
WINDOWS = (LabelConfig().observation_window_s, LabelConfig().attribution_window_s)  # the joiner's


@dataclass(frozen=True, kw_only=True)
class EvaluateBench(BenchOptions):
    """A/B evaluator examples/s per arm, ratio to the model's batched forward."""

    clicks: Count = 50_000
    """clicks in the stream"""
    batch_size: Count = 1024
    """decisions per mini-batch"""
    threads: OptionalCount = None
    """torch intra-op threads (none: torch's)"""
    device: Device = DEFAULT_DEVICE


class _Messages:
    """An in-memory source of one partition's messages (the broker is measured by bench join)."""

    def __init__(self, values: list[bytes]) -> None:
        self.values, self.position = values, 0

    def partitions(self) -> frozenset[int]:
        return frozenset({0})

    def seek(self, offsets: dict[str, int]) -> None:
        self.position = offsets.get("0", 0)

    def poll(self, timeout_s: float) -> list[Message]:
        start, self.position = self.position, min(self.position + 16, len(self.values))
        return [Message(0, o, self.values[o]) for o in range(start, self.position)]

    def lag(self, offsets: dict[str, int]) -> int | None:
        return len(self.values) - offsets.get("0", 0)

    def close(self) -> None:
        pass


def stream(clicks: int, batch_size: int) -> list[bytes]:
    """Positive or final-negative decisions of `clicks` clicks in mini-batches, then the end."""
    rng = np.random.default_rng(0)
    vocab = {
        f: rng.integers(0, 50 if i < 6 else 5_000, clicks)
        for i, f in enumerate(CRITEO_FEATURE_FIELDS)
    }
    examples = [
        Example(
            impression_id=str(i),
            user_id=f"u{rng.integers(clicks // 4)}",
            ts=i,
            label_ts=i,
            click=1,
            conversion=int(rng.random() < 0.05),
            kind="final",
            conv_type=f"t{min(int(rng.zipf(1.6)), SEARCH.top_types)}",
            scenario=f"s{min(int(rng.zipf(1.6)), SEARCH.top_scenarios)}",
            features={f: f"{f[:4]}{vocab[f][i]}" for f in CRITEO_FEATURE_FIELDS},
        )  # fmt: skip
        for i in range(clicks)
    ]
    out = []
    for seq, start in enumerate(range(0, clicks, batch_size)):
        chunk = examples[start : start + batch_size]
        batch = MiniBatch.from_examples(chunk, partition=0, seq=seq, watermark=chunk[-1].ts + 1,
                                        end=False, label_windows=WINDOWS)  # fmt: skip
        out.append(encode_minibatch(batch))
    end = MiniBatch.from_examples([], partition=0, seq=len(out), watermark=clicks + 1, end=True,
                                  label_windows=WINDOWS)  # fmt: skip
    return [*out, encode_minibatch(end)]


def _snapshots(Session, folder: Path, messages: int) -> None:
    shape = ModelConfig(n_fields=len(CRITEO_FEATURE_FIELDS), **SEARCH.capacities)
    config = LearnerConfig(model_config=shape)
    for seed, (_, run) in enumerate(ARMS):
        learner = OnlineLearner(LearnerConfig(**{**vars(config), "seed": seed}))
        for value in (f"t{i}" for i in range(1, SEARCH.top_types + 1)):
            learner.featurize.types.add(value)
        for value in (f"s{i}" for i in range(1, SEARCH.top_scenarios + 1)):
            learner.featurize.scenarios.add(value)
        store = SnapshotStore(SnapshotStoreConfig(directory=folder), Session, run=run,
                              model="mmn", run_config={})  # fmt: skip
        store.publish(learner.state(), examples_seen=0, watermark=0, offsets={"0": messages})
        store.close()


def _evaluate(
    values: list[bytes], arms: tuple[tuple[str, str], ...], folder: Path, device: torch.device
) -> tuple[float, int, Evaluator]:
    """Wall seconds of the evaluator over the whole stream (snapshots loaded before), rows
    written, and the evaluator."""
    Session = open_registry(f"sqlite:///{folder / 'registry.db'}")
    _snapshots(Session, folder / "snapshots", len(values))
    config = EvaluatorConfig(experiment="bench", arms=arms, control=arms[0][0], shadow=True,
                             until_end=True, progress_every_s=3600, flush_rows=SCORE_CHUNK)  # fmt: skip
    evaluator = Evaluator(
        config,
        Session=Session,
        source=_Messages(values),
        decode=decode_minibatch,
        device=str(device),
    )
    # Loading a snapshot (read, sha256, torch.load) happens once per snapshot: not timed here.
    evaluator.serving.refresh()
    for _, run in arms:
        evaluator.models.get(run, evaluator.serving.known[run][-1])
    started = time.perf_counter()
    outcome = evaluator.run()
    return time.perf_counter() - started, outcome.rows_written, evaluator


def _forward_seconds(evaluator: Evaluator, values: list[bytes]) -> float:
    """Seconds of the served model's forward pass alone over the same clicks, featurised before."""
    run = evaluator.runs["control"]
    known = evaluator.serving.known[run][-1]
    loaded = ModelCache(device=evaluator.models.device).get(run, known)
    batches = []
    for value in values:
        rows = decode_minibatch(value)
        for start in range(0, len(rows), SCORE_CHUNK):
            stop = start + SCORE_CHUNK
            features = {f: v[start:stop] for f, v in rows.features.items()}
            batches.append(
                tensor_batch(
                    loaded, features, rows.conv_types[start:stop], rows.scenarios[start:stop]
                )
            )
    started = time.perf_counter()
    for batch in batches:
        predict(loaded, batch)
    return time.perf_counter() - started


def run(args: EvaluateBench) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    values = stream(args.clicks, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        one_s, _, evaluator = _evaluate(values, ARMS[:1], Path(tmp) / "one", device)
        forward_after = _forward_seconds(evaluator, values)
        two_s, rows, _ = _evaluate(values, ARMS, Path(tmp) / "two", device)
        # Timed on both sides of the second evaluator run, so that the load of a shared
        # machine falls on both figures alike.
        forward_s = (forward_after + _forward_seconds(evaluator, values)) / 2
    per_arm = args.clicks / one_s
    forward = args.clicks / forward_s
    figures = {
        "clicks": args.clicks,
        "evaluator_examples_per_s_one_arm": per_arm,
        "evaluator_examples_per_s_per_arm_two_arms_shadow": args.clicks / two_s,
        "forward_examples_per_s": forward,
        "ratio": per_arm / forward,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "data": "synthetic random features (not Criteo); MMN at the paper's sizes, untrained",
    }
    print(f"evaluator, one arm: {per_arm:,.0f} examples/s (decode, final labels, assignment, "
          "featurising, scoring, SQLite writes)")  # fmt: skip
    print(f"evaluator, two arms in shadow: {args.clicks / two_s:,.0f} examples/s per arm "
          f"({rows} rows written)")  # fmt: skip
    print(f"model forward alone on the same clicks (featurised, chunks of {SCORE_CHUNK}): "
          f"{forward:,.0f} examples/s")  # fmt: skip
    print(f"ratio evaluator / forward: {figures['ratio']:.2f} (target >= 0.7)")
    return figures


ENTRIES = {
    ("bench", "evaluate"): Entry(
        "A/B evaluator examples/s per arm, ratio to the model's batched forward",
        EvaluateBench,
        run,
    )
}
