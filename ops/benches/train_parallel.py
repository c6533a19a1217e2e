"""`mmn bench train --nproc N`: data-parallel training examples/s, N ranks against one.

Both sides train the same learner config on the same synthetic mini-batches, from memory
(decoded), one torch thread per process:

- one rank: a plain `OnlineLearner` stepping the mini-batches one by one, as one trainer;
- N ranks: N processes in a gloo group on 127.0.0.1 (`ops.training.data_parallel`), each
  stepping its share (rank r the mini-batches r, r + N, ...), one global step per N
  mini-batches, the union, with the gradient all-reduce of every step.

The sides alternate in rounds over equal shares of the stream (the machine's load drifts);
each side's first step of a round is a warm-up, not timed. Each rank's group is started
per round (imports and joining are not timed); its time is that of rank 0, between barriers
around its timed steps. Scaling efficiency = (N ranks' examples/s) / (N x one rank's).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ops.training.data_parallel import ParallelLearner
from ops.training.learner import LearnerConfig, OnlineLearner
from streaming.minibatch import MiniBatch, decode_minibatch, encode_minibatch


def _share(job: dict, nproc: int, r: int) -> list[MiniBatch]:
    """Round r's mini-batches (decoded, as the trainer gets them), as many for each side."""
    per_round = job["batches"] // job["rounds"]
    stream = job["stream"](job["batches"], job["rows"])[r * per_round : (r + 1) * per_round]
    return [decode_minibatch(encode_minibatch(b)) for b in stream[: len(stream) // nproc * nproc]]


def _rank_main(rank: int, nproc: int, init: str, job: dict, out: str) -> None:
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=nproc)
    try:
        stream = _share(job, nproc, job["round"])
        mine = stream[rank::nproc]
        learner = ParallelLearner(OnlineLearner(job["config"]))
        learner.step(mine[0])  # warm-up: allocations, the first all-reduce
        dist.barrier()
        started, before = time.perf_counter(), learner.learner.examples_seen
        for batch in mine[1:]:
            learner.step(batch)
        dist.barrier()
        elapsed = time.perf_counter() - started
        if rank == 0:
            examples = learner.learner.examples_seen - before
            Path(out).write_text(f"{examples} {elapsed}")
    finally:
        dist.destroy_process_group()


def _one_rank(config: LearnerConfig, stream: list[MiniBatch]) -> tuple[int, float]:
    learner = OnlineLearner(config)
    learner.step(stream[0])  # warm-up, as on the other side
    started, before = time.perf_counter(), learner.examples_seen
    for batch in stream[1:]:
        learner.step(batch)
    return learner.examples_seen - before, time.perf_counter() - started


def measure_parallel(
    config: LearnerConfig,
    stream: Callable[[int, int], list[MiniBatch]],
    batches: int,
    rows: int,
    nproc: int,
    rounds: int,
) -> tuple[float, float]:
    """Examples/s of (one rank, nproc ranks), alternating in rounds; one thread per process.

    stream: (count, rows) -> the mini-batches (a module-level function: ranks call it too).
    """
    job = {"config": config, "stream": stream, "batches": batches, "rows": rows, "rounds": rounds}
    seconds, examples = {"one": 0.0, "group": 0.0}, {"one": 0, "group": 0}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(rounds):
                for side in ("one", "group") if r % 2 == 0 else ("group", "one"):
                    if side == "one":
                        n, s = _one_rank(config, _share(job, nproc, r))
                    else:
                        out = Path(tmp) / f"round{r}"
                        # A file rendezvous: no port picked free and taken by another
                        # process before the group binds it.
                        init = f"file://{Path(tmp) / f'rendezvous{r}'}"
                        args = (nproc, init, {**job, "round": r}, str(out))
                        mp.spawn(_rank_main, args=args, nprocs=nproc)
                        n_text, s_text = out.read_text().split()
                        n, s = int(n_text), float(s_text)
                    examples[side] += n
                    seconds[side] += s
    finally:
        torch.set_num_threads(threads)
    return examples["one"] / seconds["one"], examples["group"] / seconds["group"]


class ParallelSizes(Protocol):
    """What `bench train --nproc` measures (its options)."""

    @property
    def model(self) -> str: ...
    @property
    def batches(self) -> int: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def nproc(self) -> int: ...
    @property
    def rounds(self) -> int: ...


def run_parallel(
    args: ParallelSizes,
    config: LearnerConfig,
    stream: Callable[[int, int], list[MiniBatch]],
) -> dict:
    """`--nproc N`: the figures of N ranks against one on stream's mini-batches."""
    one, group = measure_parallel(
        config, stream, args.batches, args.batch_size, args.nproc, args.rounds
    )
    efficiency = group / (args.nproc * one)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    print(
        f"trainer {args.model}, {args.batches} mini-batches of {args.batch_size}: one rank "
        f"{one:,.0f} examples/s, {args.nproc} ranks {group:,.0f} examples/s, scaling "
        f"efficiency {efficiency:.2f} (target >= 0.75); load average {' '.join(load)}"
    )
    return {
        "model": args.model,
        "batches": args.batches,
        "batch_size": args.batch_size,
        "nproc": args.nproc,
        "rounds": args.rounds,
        "threads_per_rank": 1,
        "one_rank_examples_per_s": round(one, 1),
        "ranks_examples_per_s": round(group, 1),
        "scaling_efficiency": round(efficiency, 3),
        "loadavg": " ".join(load),
    }
