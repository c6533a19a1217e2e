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

import argparse
import time

import numpy as np
import torch

from model import registry
from model.batch import Batch
from model.registry import ModelConfig

SLOW_MODELS = {"mmn_masked": 1}  # timed steps for models too slow for the default


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "model", help="training examples/s (ratio to ESMM) and single-request latency per model"
    )
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    parser.add_argument(
        "--requests", type=int, default=2000, help="timed single requests per model"
    )
    parser.add_argument("--models", help="comma-separated names (default: every registered model)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default: torch's); 1 avoids oversubscription on a busy machine",
    )
    parser.set_defaults(func=run)


def _random_batch(config: ModelConfig, rows: int, g: torch.Generator) -> Batch:
    click = torch.ones(rows)
    return Batch.of(
        torch.randint(0, config.buckets, (rows, config.n_fields), generator=g),
        torch.randint(0, config.n_types, (rows,), generator=g),
        torch.randint(0, config.n_scenarios, (rows,), generator=g),
        click=click,
        conversion=(torch.rand(rows, generator=g) < 0.1).float(),
    )


def train_throughput(name: str, config: ModelConfig, batch: Batch, steps: int) -> float:
    """Examples/s of full training steps (median step time), after one warm-up step."""
    spec = registry.get(name)
    torch.manual_seed(0)
    model = spec.build(config)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.05, fused=True)
    times = []
    for step in range(steps + (1 if name not in SLOW_MODELS else 0)):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        spec.loss(model(batch), batch).backward()
        optimizer.step()
        if step > 0 or name in SLOW_MODELS:
            times.append(time.perf_counter() - started)
    return len(batch) / float(np.median(times))


def request_latency_us(name: str, config: ModelConfig, requests: int) -> tuple[float, float]:
    """p50, p99 of one request's prediction, in microseconds."""
    torch.manual_seed(0)
    model = registry.get(name).build(config).eval()
    g = torch.Generator().manual_seed(1)
    one_row = _random_batch(config, requests, g)
    request = getattr(model, "request", None)

    def predict(i: int) -> None:
        if request is not None:
            request(one_row.ids[i], int(one_row.conv_type[i]), int(one_row.scenario[i]))
        else:
            with torch.no_grad():
                model(one_row.slice(i, i + 1))

    warm = _random_batch(config, 1, g)
    for t in range(config.n_types):
        for s in range(config.n_scenarios):
            if request is not None:
                request(warm.ids[0], t, s)
    for i in range(min(50, requests)):
        predict(i)
    times = []
    for i in range(requests):
        started = time.perf_counter_ns()
        predict(i)
        times.append((time.perf_counter_ns() - started) / 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def run(args: argparse.Namespace) -> dict:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = ModelConfig(n_fields=18, n_types=21, n_scenarios=17)
    names = args.models.split(",") if args.models else registry.names()
    batch = _random_batch(config, args.batch_size, torch.Generator().manual_seed(0))
    figures: dict[str, dict] = {}
    for name in names:
        steps = SLOW_MODELS.get(name, args.steps)
        throughput = train_throughput(name, config, batch, steps)
        p50, p99 = request_latency_us(
            name, config, args.requests if name not in SLOW_MODELS else 200
        )
        figures[name] = {
            "train_examples_per_s": throughput,
            "latency_p50_us": p50,
            "latency_p99_us": p99,
        }
        print(
            f"{name}: {throughput:,.0f} examples/s, request p50 {p50:.0f} us, p99 {p99:.0f} us",
            flush=True,
        )
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
    }
