"""`mmn bench model`: training throughput and single-request latency of every registered model.

Throughput: examples/s of forward + backward + fused Adagrad step at the paper's sizes
(18 fields, dim 10, 512-256-128-128, 21 types x 17 scenarios), embeddings included, on
random mixed-domain batches, with the ratio to ESMM measured in the same run. The literal
auto-masking reference (`mmn_masked`) runs 357 towers per batch: it gets one timed step.

Latency: one request through the model's fast prediction path (`model.request(ids, t, s)`
where a model has one, as MMN does; otherwise the forward pass on a 1-row batch), p50 and
p99 in microseconds over random requests, after every domain has been requested once (so
MMN's composed-tower cache is warm, as it is in a serving process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch

from model import zoo
from model.batch import Batch
from model.config import ModelConfig
from model.optimizers import OPTIMIZERS, make_optimizer
from ops.options.bench import BenchOptions
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry
from ops.options.values import Count, OptionalCount, list_of, one_of

SLOW_MODELS = {"mmn_masked": 1}  # timed steps (no warm-up) of models too slow for the default


@dataclass(frozen=True, kw_only=True)
class ModelBench(BenchOptions):
    """Training examples/s (ratio to ESMM) and single-request latency per model."""

    batch_size: Count = 4096
    """rows per training step"""
    steps: Count = 10
    """timed training steps per model"""
    requests: Count = 2000
    """timed single requests per model"""
    models: Annotated[tuple[str, ...], list_of(str)] = ()
    """comma-separated names (none: every registered model)"""
    optimizer: Annotated[str, one_of(tuple(OPTIMIZERS))] = "adagrad"
    """timed step's optimizer"""
    threads: OptionalCount = None
    """torch intra-op threads (none: torch's); 1 avoids oversubscription on a busy machine"""
    device: Device = DEFAULT_DEVICE


def _random_batch(config: ModelConfig, rows: int, g: torch.Generator) -> Batch:
    click = torch.ones(rows)
    return Batch.of(
        torch.randint(0, config.buckets, (rows, config.n_fields), generator=g),
        torch.randint(0, config.n_types, (rows,), generator=g),
        torch.randint(0, config.n_scenarios, (rows,), generator=g),
        click=click,
        conversion=(torch.rand(rows, generator=g) < 0.1).float(),
    )


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a GPU runs asynchronously: time what it did)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def train_throughput(
    names: list[str],
    config: ModelConfig,
    batch: Batch,
    steps: int,
    optimizer: str = "adagrad",
    device: torch.device | str = "cpu",
) -> dict:
    """Examples/s of full training steps (median step time) per model, after one warm-up step.

    The models take their steps in turns, so that a busy machine slows them alike and the
    ratios stay meaningful; models in SLOW_MODELS run their few steps afterwards.
    """
    runners = {}
    for name in names:
        spec = zoo.get(name)
        torch.manual_seed(0)
        model = spec.build(config).to(device)
        runners[name] = (spec, model, make_optimizer(optimizer, model.parameters(), lr=0.05))
    batch = batch.to(device)
    times: dict[str, list[float]] = {name: [] for name in names}

    def step(name: str) -> float:
        spec, model, optimizer = runners[name]
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        spec.loss(model(batch), batch).backward()
        optimizer.step()
        synchronize(device)
        return time.perf_counter() - started

    regular = [n for n in names if n not in SLOW_MODELS]
    for round_ in range(steps + 1):
        for name in regular:
            elapsed = step(name)
            if round_ > 0:
                times[name].append(elapsed)
    for name in names:
        if name in SLOW_MODELS:
            times[name] = [step(name) for _ in range(SLOW_MODELS[name])]
    return {name: len(batch) / float(np.median(t)) for name, t in times.items()}


def request_latency_us(
    names: list[str],
    config: ModelConfig,
    requests: int,
    device: torch.device | str = "cpu",
) -> dict:
    """p50, p99 of one request's prediction per model, in microseconds.

    Requests go to the models in turns (like the training steps) so that load spikes on
    the machine fall on all of them alike.
    """
    g = torch.Generator().manual_seed(1)
    rows = _random_batch(config, requests, g).to(device)
    ids = list(rows.ids)
    domains = list(zip(rows.conv_type.tolist(), rows.scenario.tolist(), strict=True))
    singles = [rows.slice(i, i + 1) for i in range(requests)]
    predictors = {}
    for name in names:
        torch.manual_seed(0)
        model = zoo.get(name).build(config).to(device).eval()
        request = getattr(model, "request", None)
        if request is not None:
            for t in range(config.n_types):  # warm the composed-tower cache, as in serving
                for s in range(config.n_scenarios):
                    request(ids[0], t, s)
            predictors[name] = lambda i, request=request: request(ids[i], *domains[i])
        else:
            predictors[name] = lambda i, model=model: model(singles[i])
    times: dict[str, list[float]] = {name: [] for name in names}
    with torch.no_grad():
        for i in range(min(50, requests)):
            for predict in predictors.values():
                predict(i)
        for i in range(requests):
            for name, predict in predictors.items():
                started = time.perf_counter_ns()
                predict(i)
                synchronize(device)
                times[name].append((time.perf_counter_ns() - started) / 1000)
    return {
        name: (float(np.percentile(t, 50)), float(np.percentile(t, 99)))
        for name, t in times.items()
    }


def run(args: ModelBench) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = ModelConfig(n_fields=18, n_types=21, n_scenarios=17)
    names = list(args.models) or zoo.names()
    batch = _random_batch(config, args.batch_size, torch.Generator().manual_seed(0))
    throughput = train_throughput(names, config, batch, args.steps, args.optimizer, device)
    latency = request_latency_us(names, config, args.requests, device)
    figures = {
        name: {
            "train_examples_per_s": throughput[name],
            "latency_p50_us": latency[name][0],
            "latency_p99_us": latency[name][1],
        }
        for name in names
    }
    esmm = figures.get("esmm")
    for f in figures.values():
        f["ratio_to_esmm"] = (
            f["train_examples_per_s"] / esmm["train_examples_per_s"] if esmm else None
        )
    print(f"{'model':12s} {'examples/s':>11s} {'x ESMM':>7s} {'p50 us':>8s} {'p99 us':>8s}")
    for name, f in figures.items():
        ratio = f"{f['ratio_to_esmm']:.2f}" if f["ratio_to_esmm"] is not None else "-"
        print(
            f"{name:12s} {f['train_examples_per_s']:11,.0f} {ratio:>7s} "
            f"{f['latency_p50_us']:8.0f} {f['latency_p99_us']:8.0f}"
        )
    return {
        "models": figures,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
    }


ENTRIES = {
    ("bench", "model"): Entry(
        "training examples/s (ratio to ESMM) and single-request latency per model", ModelBench, run
    )
}
