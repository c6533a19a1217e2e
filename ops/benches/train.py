"""`mmn bench train`: the trainer consuming from the broker against training from memory.

Both sides run the same learner (same model, config and seed) on the same mini-batches:

- memory: the mini-batches already decoded, handed to `OnlineLearner.step` one by one
  (hashing, vocabularies, dedupe, forward, backward, fused Adagrad);
- broker: the full `Trainer` reading the encoded mini-batches from a `minibatches` topic
  through kafka-python, decoding each message (`streaming.minibatch`) and stepping.

The two sides alternate in rounds over equal shares of the stream (the machine's load
drifts during a run; alternating puts both under the same); a first round warms both up
untimed (the consumer's connection and first fetch, allocations). Figures: examples/s of each
and their ratio (target >= 0.8: consuming costs at most a
fifth of the training throughput). The broker side is timed from the start of each
`Trainer.run` to the end of its last step, and its store keeps nothing: the snapshot a
run closes with (hundreds of MB at the paper's sizes) is not what is measured.

With `--nproc N`, no broker: N data-parallel ranks against one (`ops.benches.train_parallel`).

With `--sparse`, no broker: the learner's examples/s on mini-batches of `--sparse-rows`
(5: what a sparse stream through the default joiner makes) against mini-batches of
`--batch-size`, alternating in rounds in the same run; `sparse_to_dense_ratio` is their
ratio (target >= 0.3: a step costs what its rows cost, not a full table update).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from kafka import KafkaProducer

from model.config import ModelConfig
from model.features import CRITEO_FEATURE_FIELDS, FeaturizerConfig
from ops.benches.train_parallel import run_parallel
from ops.errors import ConfigError
from ops.options.bench import BenchOptions
from ops.options.bootstrap import Bootstrap, bootstrap_or_embedded
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry
from ops.options.values import Count, OptionalCount, list_of
from ops.store.snapshots import PublishedSnapshot, Reconciliation
from ops.streams.kafka_source import KafkaSource
from ops.training.learner import LearnerConfig, OnlineLearner, StepResult
from ops.training.rows import LabeledRows
from ops.training.trainer import Trainer, TrainerConfig
from simulator.criteo_search import CriteoSearchConfig
from streaming.events import OTHER_DOMAIN
from streaming.example import Example
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch
from streaming.segments import BatchConfig
from streaming.topics import create_topics

PARTITIONS = 2

SEARCH = CriteoSearchConfig()  # the default domain columns and their top-K


@dataclass(frozen=True, kw_only=True)
class TrainBench(BenchOptions):
    """Trainer examples/s from the broker vs from in-memory batches."""

    model: str = LearnerConfig.model
    """registered model"""
    batches: Count = 40
    """mini-batches in the stream"""
    batch_size: Count = BatchConfig.batch_size
    """rows per mini-batch"""
    hidden: Annotated[tuple[int, ...], list_of(int)] = ModelConfig.hidden
    """tower widths"""
    buckets: Count = ModelConfig.buckets
    """hash buckets per field"""
    rounds: Count = 4
    """alternations of the memory and broker sides"""
    threads: OptionalCount = None
    """torch threads"""
    sparse: bool = False
    """measure tiny mini-batches against full ones instead (no broker)"""
    sparse_rows: Count = 5
    """rows per tiny mini-batch (--sparse)"""
    nproc: Count = 1
    """measure N data-parallel ranks against one instead (no broker; one thread each)"""
    device: Device = DEFAULT_DEVICE
    bootstrap: Bootstrap = None


def synthetic_minibatches(count: int, rows: int, seed: int = 0) -> list[MiniBatch]:
    """Mixed-domain mini-batches over the 18 Criteo fields (21 types x 17 scenarios).

    As a reader writes them: the last type and the last scenario are its OTHER_DOMAIN.
    """
    rng = np.random.default_rng(seed)
    batches = []
    for b in range(count):
        values = {f: rng.integers(0, 2000, rows) for f in CRITEO_FEATURE_FIELDS}
        n_types, n_scenarios = SEARCH.top_types, SEARCH.top_scenarios
        types = rng.integers(0, n_types + 1, rows)
        scenarios = rng.integers(0, n_scenarios + 1, rows)
        converted = rng.random(rows) < 0.1
        examples = [
            Example(
                impression_id=f"{b}-{i}",
                user_id=str(values["user_id"][i]),
                ts=b * 60 + i // 100,
                label_ts=b * 60 + 30,
                click=1,
                conversion=int(converted[i]),
                kind="positive" if converted[i] else "negative",
                conv_type=OTHER_DOMAIN if types[i] == n_types else f"t{types[i]}",
                scenario=OTHER_DOMAIN if scenarios[i] == n_scenarios else f"s{scenarios[i]}",
                features={f: f"{f[:4]}{values[f][i]:05x}" for f in CRITEO_FEATURE_FIELDS},
            )
            for i in range(rows)
        ]
        batches.append(
            MiniBatch.from_examples(
                examples,
                partition=b % PARTITIONS,
                seq=b // PARTITIONS,
                watermark=b * 60 + 60,
                end=False,
            )
        )
    return batches


def learner_config(
    model: str, *, buckets: int, hidden: tuple[int, ...] = ModelConfig.hidden
) -> LearnerConfig:
    """The learner of a registered model over the Criteo fields, at `mmn train`'s defaults."""
    return LearnerConfig(
        model=model,
        model_config=ModelConfig(
            n_fields=len(CRITEO_FEATURE_FIELDS),
            buckets=buckets,
            **SEARCH.capacities,  # a reader's top-K values and its OTHER_DOMAIN
            hidden=hidden,
        ),
        featurizer=FeaturizerConfig(buckets=buckets),
    )


class _NoSnapshots:
    """A snapshot store that keeps nothing: snapshots are not what this bench measures."""

    def reconcile(self) -> Reconciliation:
        return Reconciliation()

    def load_latest(self) -> None:
        return None

    def publish(
        self,
        payload: dict[str, Any],
        *,
        examples_seen: int,
        watermark: int | None,
        offsets: dict[str, int],
        metrics: dict[str, Any] | None = None,
        examples_trained: int | None = None,
    ) -> PublishedSnapshot:
        return PublishedSnapshot(
            run="bench",
            version=0,
            path="",
            sha256="",
            examples_seen=examples_seen,
            watermark=watermark,
            offsets=offsets,
        )


class _TimedLearner(OnlineLearner):
    """An OnlineLearner that notes when its last step ended (the broker side's clock)."""

    last_end = 0.0

    def step(self, rows: LabeledRows) -> StepResult:
        result = super().step(rows)
        self.last_end = time.perf_counter()
        return result


def _publish(batches: list[MiniBatch], bootstrap: str) -> str:
    """A fresh topic holding batches, then an end-of-stream mini-batch per partition."""
    topic = f"bench-minibatches-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, {topic: PARTITIONS})
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=64 * 1024 * 1024)
    for batch in batches:
        producer.send(topic, value=encode_minibatch(batch), partition=batch.partition)
    for partition in range(PARTITIONS):  # the end markers the joiner sends, as in a replay
        end = MiniBatch.from_examples(
            [], partition=partition, seq=len(batches), watermark=batches[-1].watermark, end=True
        )
        producer.send(topic, value=encode_minibatch(end), partition=partition)
    producer.flush()
    producer.close()
    return topic


def measure(
    config: LearnerConfig,
    batches: list[MiniBatch],
    bootstrap: str,
    rounds: int,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Examples/s (memory, broker), the two alternating in rounds over equal shares of batches.

    Alternating keeps both sides under the same machine load, which drifts during a run.
    """
    topic = _publish(batches, bootstrap)
    decoded = [decode_minibatch(encode_minibatch(batch)) for batch in batches]
    share = len(batches) // (rounds + 1)
    timed, memory = _TimedLearner(config, device), OnlineLearner(config, device)
    source = KafkaSource(bootstrap, topic)
    try:
        trainer = Trainer(
            TrainerConfig(
                run="bench",
                snapshot_every_examples=None,
                max_batches=share,
                idle_timeout_s=30,
                progress_every_s=3600,
            ),
            new_learner=lambda: timed,
            store=_NoSnapshots(),
            source=source,
            decode=decode_minibatch,
        )
        seconds = {"memory": 0.0, "broker": 0.0}
        examples = {"memory": 0, "broker": 0}
        # Round 0 is a warm-up of both sides (the consumer's first fetch, allocations).
        for r in range(rounds + 1):
            # Which side goes first alternates too, so neither always follows the other.
            for side in ("memory", "broker") if r % 2 == 0 else ("broker", "memory"):
                learner = memory if side == "memory" else timed
                start, seen = time.perf_counter(), learner.examples_seen
                if side == "memory":
                    end = start + step_through(memory, decoded[r * share : (r + 1) * share])
                else:
                    trainer.run()
                    end = timed.last_end
                if r:
                    seconds[side] += end - start
                    examples[side] += learner.examples_seen - seen
        return (
            examples["memory"] / seconds["memory"],
            examples["broker"] / seconds["broker"],
        )
    finally:
        source.close()


def step_through(learner: OnlineLearner, batches: list[MiniBatch]) -> float:
    """Seconds `learner` takes to step through decoded batches in order (the memory side)."""
    start = time.perf_counter()
    for batch in batches:
        learner.step(batch)
    return time.perf_counter() - start


def memory_examples_per_s(config: LearnerConfig, batches: list[MiniBatch], rounds: int) -> float:
    """The memory side of `measure` alone: examples/s over `rounds` equal shares of batches
    (decoded as a consumer decodes them), after a first share that warms up untimed."""
    decoded = [decode_minibatch(encode_minibatch(batch)) for batch in batches]
    share = len(decoded) // (rounds + 1)
    learner = OnlineLearner(config)
    step_through(learner, decoded[:share])
    seen = learner.examples_seen
    seconds = step_through(learner, decoded[share : (rounds + 1) * share])
    return (learner.examples_seen - seen) / seconds


def measure_small(
    config: LearnerConfig,
    small: list[MiniBatch],
    full: list[MiniBatch],
    rounds: int,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Examples/s (small, full) of one learner each, alternating over equal shares; round 0 warms up."""
    learners = {"small": OnlineLearner(config, device), "full": OnlineLearner(config, device)}
    streams = {"small": small, "full": full}
    seconds = {"small": 0.0, "full": 0.0}
    rows = {"small": 0, "full": 0}
    for r in range(rounds + 1):
        for side in ("small", "full") if r % 2 == 0 else ("full", "small"):
            share = len(streams[side]) // (rounds + 1)
            learner, seen = learners[side], learners[side].examples_seen
            elapsed = step_through(learner, streams[side][r * share : (r + 1) * share])
            if r:
                seconds[side] += elapsed
                rows[side] += learner.examples_seen - seen
    return rows["small"] / seconds["small"], rows["full"] / seconds["full"]


def run_sparse(args: TrainBench, config: LearnerConfig, device: torch.device) -> dict:
    """`--sparse`: tiny mini-batches against full ones, in one run."""
    full = synthetic_minibatches(args.batches, args.batch_size)
    n_small = args.batches * args.batch_size // args.sparse_rows
    small = synthetic_minibatches(n_small, args.sparse_rows, seed=1)
    small_rate, full_rate = measure_small(config, small, full, args.rounds, device)
    ratio = small_rate / full_rate
    print(
        f"learner {args.model}: mini-batches of {args.sparse_rows} rows {small_rate:,.0f} "
        f"examples/s, of {args.batch_size} rows {full_rate:,.0f} examples/s, ratio {ratio:.2f} "
        "(target >= 0.3)"
    )
    return {
        "model": args.model,
        "sparse_rows": args.sparse_rows,
        "batch_size": args.batch_size,
        "sparse_examples_per_s": round(small_rate, 1),
        "dense_examples_per_s": round(full_rate, 1),
        "sparse_to_dense_ratio": round(ratio, 3),
        "rounds": args.rounds,
    }


def run(args: TrainBench) -> dict:
    config = learner_config(args.model, buckets=args.buckets, hidden=args.hidden)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.nproc > 1:
        if device.type != "cpu":
            raise ConfigError(
                "--nproc: this bench runs its ranks on the CPU (gloo); use --device cpu"
            )
        return run_parallel(args, config, synthetic_minibatches)
    if args.sparse:
        return run_sparse(args, config, device)
    batches = synthetic_minibatches(args.batches, args.batch_size)
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        memory, broker = measure(config, batches, bootstrap, args.rounds, device)
    figures = {
        "model": args.model,
        "batches": args.batches,
        "batch_size": args.batch_size,
        "memory_examples_per_s": round(memory, 1),
        "rounds": args.rounds,
        "broker_examples_per_s": round(broker, 1),
        "ratio_broker_to_memory": round(broker / memory, 3),
    }
    print(
        f"trainer {args.model}, {args.batches} mini-batches of {args.batch_size}: "
        f"in-memory {memory:,.0f} examples/s, from the broker {broker:,.0f} examples/s, "
        f"ratio {broker / memory:.2f} (target >= 0.8)"
    )
    return figures


ENTRIES = {
    ("bench", "train"): Entry(
        "trainer examples/s from the broker vs from in-memory batches", TrainBench, run
    )
}
