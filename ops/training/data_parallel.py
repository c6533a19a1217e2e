"""Data-parallel training: N processes (ranks) of one run learn one model (torch.distributed).

Every rank holds a replica of the model (the same seed, or the same snapshot) and consumes
its own partitions of the `minibatches` topic. A global step:

1. every rank brings its next mini-batch in event-time order, or nothing (an empty
   contribution: its partitions have nothing left or are waited for elsewhere);
2. the ranks tell each other their rows' domain values, row counts, watermarks and end
   flags (one all_gather_object): every rank grows its vocabularies with the union's values
   in rank order and advances to the union's watermark, as one process stepping on the
   concatenation of the ranks' mini-batches would;
3. once the union holds min_step_rows new rows (or a rank's stream ended), each rank runs
   the forward pass on its own rows with the loss of its share of the union
   (`model.batch.BatchShare`: terms over the union's row count, dynamic weights from the
   union's domain counts), the gradients are summed over the ranks (dense ones by one
   all_reduce; sparse embedding gradients by gathering every rank's rows and values), and
   every rank takes the same optimizer step.

So N ranks compute what one process computes on the union of their mini-batches, up to the
order of float sums (tests: parameters equal to 1e-5). gloo on the CPU, NCCL on CUDA.

Not supported across ranks: delayed-feedback methods with an auxiliary delay model
(es-dfm, defer: its own optimizer steps per rank) and the learning-rate race (`--lr auto`).
Each rank's progressive validation scores its own rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from model.batch import BatchShare
from ops.errors import ConfigError
from ops.training import delayed
from ops.training.learner import OnlineLearner, StepResult
from ops.training.learner_config import LearnerConfig
from ops.training.rows import LabeledRows


def check_parallel(config: LearnerConfig) -> None:
    """Refuse a learner whose training cannot be split across ranks (see the module docstring)."""
    if delayed.get(config.method).uses_aux:
        raise ConfigError(
            f"--nproc: the delayed-feedback method {config.method!r} steps an auxiliary "
            "delay model per process; use vanilla, wait or fnw with several ranks"
        )
    if config.lr == "auto":
        raise ConfigError("--nproc: --lr auto races learners in one process; give --lr a number")


class GroupLink:
    """The ranks of torch.distributed's default group, as the trainer talks to them.

    Every rank must make the same calls in the same order (collectives pair them up).
    """

    def __init__(self) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's value (plain data), in rank order."""
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def any(self, flag: bool) -> bool:
        """Whether any rank's flag is set (every rank gets the same answer)."""
        return any(self.gather(bool(flag)))

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value, on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


class ParallelLearner:
    """One rank's part of a data-parallel learner: `step(rows or None)` once per global step.

    Every rank must call step the same number of times (the collectives pair them up).
    """

    def __init__(self, learner: OnlineLearner, link: GroupLink | None = None) -> None:
        check_parallel(learner.config)
        self.learner = learner
        self.link = link or GroupLink()
        self.rank = self.link.rank
        # Rows gathered for the next step, all ranks together.
        self.gathered = sum(self.link.gather(len(learner.pending)))

    def step(self, rows: LabeledRows | None) -> StepResult:
        """Take in this rank's rows (None: nothing this step); one optimizer step, on every
        rank, once the union has gathered min_step_rows rows or a rank's stream ended."""
        learner = self.learner
        given = rows if rows is not None and len(rows.impression_ids) else None
        keep = None
        if given is not None:
            keep = learner.deduper.admit(given.impression_ids, given.kinds, given.label_ts)
        mine = {
            "types": [] if given is None else list(given.conv_types),
            "scenarios": [] if given is None else list(given.scenarios),
            "kept": 0 if keep is None else int(keep.sum()),
            "dropped": 0 if keep is None else int((~keep).sum()),
            "watermark": None if rows is None else rows.watermark,
            "end": rows is not None and rows.end,
        }
        every = self.link.gather(mine)
        kept = sum(c["kept"] for c in every)
        if kept:  # the union's values, in rank order, as one process would count them
            learner.featurize.observe(
                [v for c in every for v in c["types"]], [v for c in every for v in c["scenarios"]]
            )
        finite = [c["watermark"] for c in every if _finite(c["watermark"])]
        learner.advance(max(finite) if finite else None)
        if given is not None and keep is not None and keep.any():
            kinds = np.asarray(given.kinds, dtype=object)[keep]
            learner.pending.add(learner.batch(given, keep, grow=False), kinds)
        learner.examples_seen += kept
        self.gathered += kept
        dropped = sum(c["dropped"] for c in every)
        if self.gathered and (
            self.gathered >= learner.config.min_step_rows or any(c["end"] for c in every)
        ):
            trained = self.gathered
            return StepResult(trained=trained, dropped=dropped, loss=self.flush())
        return StepResult(trained=0, dropped=dropped, loss=math.nan)

    def flush(self) -> float:
        """One optimizer step on every rank's gathered rows; the union's loss (nan if none)."""
        learner = self.learner
        self.gathered = 0
        taken = learner.pending.take()
        batch, kinds = None, None
        if taken is not None:
            # No delay model across ranks (check_parallel): the method only picks the rows.
            batch, kinds, _ = learner.weigh.select(*taken)
        columns = (
            (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
            if batch is None
            else (batch.conv_type.numpy(), batch.scenario.numpy(), batch.click.numpy())
        )
        every = self.link.gather(columns)
        sizes = [len(c[0]) for c in every]
        learner.batches += 1  # as one process counts a step whose rows its method all skips
        if not sum(sizes):
            return math.nan
        conv_type, scenario, click = (
            torch.from_numpy(np.concatenate([c[i] for c in every])).to(learner.device)
            for i in range(3)
        )
        share = BatchShare(conv_type, scenario, click, start=sum(sizes[: self.rank]))
        learner.update.zero_grad()
        loss = torch.zeros((), device=learner.device)
        if batch is not None and kinds is not None and len(batch):
            loss = learner.loss(batch, kinds, share=share)
            loss.backward()
        total = all_reduce_gradients(learner, loss.detach())
        learner.update.step()
        learner.examples_trained += sum(sizes)
        return total


def all_reduce_gradients(learner: OnlineLearner, loss: torch.Tensor) -> float:
    """Sum every rank's gradients (and losses) into each rank's parameters' .grad; the summed loss.

    A parameter no rank has a gradient for keeps none (an optimizer skips it, as one process
    would). Sparse embedding gradients are summed by gathering every rank's rows and values.
    """
    dense = [p for group in learner.update.optimizer.dense.param_groups for p in group["params"]]
    device = loss.device
    flags = torch.tensor([p.grad is not None for p in dense], dtype=torch.float32, device=device)
    flat = torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in dense]
        + [flags, loss.reshape(1).to(torch.float32)]
    )
    dist.all_reduce(flat)
    offset = 0
    for p, has in zip(dense, flat[-1 - len(dense) : -1].tolist(), strict=True):
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p) if has else None
        offset += n
    sparse = learner.update.optimizer.sparse
    if sparse is not None:
        for group in sparse.param_groups:
            for p in group["params"]:
                p.grad = _sum_sparse(p)
    return float(flat[-1])


def _sum_sparse(p: torch.Tensor) -> torch.Tensor | None:
    """The sum over ranks of p's sparse gradient (None where no rank has one)."""
    width = p.shape[1:]
    if p.grad is None:
        rows = torch.zeros(0, dtype=torch.int64, device=p.device)
        values = torch.zeros((0, *width), dtype=p.dtype, device=p.device)
    else:
        grad = p.grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
    counts = _gather_tensor(torch.tensor([len(rows)], device=p.device))
    sizes = [int(c) for c in counts]
    if not sum(sizes):
        return None
    every_rows = _gather_padded(rows, sizes)
    every_values = _gather_padded(values, sizes)
    return torch.sparse_coo_tensor(
        every_rows.unsqueeze(0), every_values, p.shape, check_invariants=True
    ).coalesce()


def _gather_tensor(t: torch.Tensor) -> torch.Tensor:
    out = [torch.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return torch.cat(out)


def _gather_padded(t: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Every rank's t (sizes[r] rows on rank r), concatenated in rank order."""
    longest = max(sizes)
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: len(t)] = t
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return torch.cat([o[:n] for o, n in zip(out, sizes, strict=True)])


def _finite(watermark: float | None) -> bool:
    return watermark is not None and math.isfinite(watermark)
