"""PLE (Tang et al., RecSys 2020) with conversion types or display scenarios as its tasks.

Two customised-gate-control (CGC) levels extract progressively: each level has shared experts and
task-specific experts; a task's gate mixes its own experts with the shared ones, and below the top
level a shared gate mixes the experts that feed the next level's shared experts. Level l's experts
are one Linear+ReLU of width `config.hidden[l]` (512, then 256); each task's tower takes the
remaining widths (128-128 -> 1). The CTR tower is ESMM's, as in MMN, with the ESMM loss.

One deliberate difference from the paper: there every example carries every task's label, and the
shared gate mixes all tasks' experts. Here a row belongs to exactly one task (its type, or its
scenario) and its prediction depends on that task's path only, so the shared gate of a row mixes
the shared experts with the row's own task's experts. Otherwise each row would run every task's
experts (21 types: ~20x the expert cost) to feed experts trained on other tasks' rows.

Domain-specific parameter sets: per task, its experts, gates and tower (N_t, or N_s).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.baselines.mixture import expert, mix
from model.baselines.routing import DomainAxis, DomainGroups
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.errors import ModelConfigError
from model.layers import MLP, FieldEmbedding


@dataclass(frozen=True, kw_only=True)
class PLEConfig:
    """PLE's own hyper-parameters.

    levels: CGC extraction levels (2, as the brief and PLE's progressive extraction ask); level l
        uses width ModelConfig.hidden[l], the remaining widths form each task's tower.
    n_shared: shared experts per level (2).
    n_specific: experts per task per level (1).
    """

    levels: int = 2
    n_shared: int = 2
    n_specific: int = 1

    def __post_init__(self) -> None:
        if min(self.levels, self.n_shared, self.n_specific) < 1:
            raise ModelConfigError(f"PLEConfig values must all be >= 1, got {self}")


class CGCLevel(nn.Module):
    """One extraction level: shared experts, per-task experts and gates, and maybe a shared gate."""

    def __init__(
        self, in_dim: int, width: int, n_tasks: int, ple: PLEConfig, *, shared_gate: bool
    ) -> None:
        super().__init__()
        n_mixed = ple.n_specific + ple.n_shared
        self.shared = nn.ModuleList(expert(in_dim, (width,)) for _ in range(ple.n_shared))
        self.specific = nn.ModuleList(
            nn.ModuleList(expert(in_dim, (width,)) for _ in range(ple.n_specific))
            for _ in range(n_tasks)
        )
        self.task_gates = nn.ModuleList(nn.Linear(in_dim, n_mixed) for _ in range(n_tasks))
        self.shared_gate = nn.Linear(in_dim, n_mixed) if shared_gate else None

    def forward(
        self, groups: DomainGroups, task_in: Tensor, shared_in: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """(B, D) task and shared inputs in domain order -> task output and shared output."""
        shared = torch.stack([e(shared_in) for e in self.shared], dim=1)  # (B, S, W)
        own = groups.map(
            lambda t, x: torch.stack([e(x) for e in self.specific[t]], dim=1), task_in
        )  # (B, K, W)
        experts = torch.cat([own, shared], dim=1)  # (B, K+S, W)
        task_out = groups.map(lambda t, x, e: mix(self.task_gates[t](x), e), task_in, experts)
        if self.shared_gate is None:
            return task_out, None
        return task_out, mix(self.shared_gate(shared_in), experts)


class PLE(nn.Module):
    """Shared embeddings, CGC levels, per-task CVR towers; ESMM's CTR tower."""

    def __init__(
        self, config: ModelConfig, tasks: DomainAxis, ple: PLEConfig = PLEConfig()
    ) -> None:
        super().__init__()
        if ple.levels >= len(config.hidden):
            raise ModelConfigError(
                f"PLEConfig.levels={ple.levels} leaves no tower layer of hidden={config.hidden}; "
                "use fewer levels or more hidden widths"
            )
        self.tasks, self.n_tasks = tasks, tasks.size(config)
        self.embed = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        self.ctr = MLP(self.embed.out_dim, config.hidden)
        dims = (self.embed.out_dim, *config.hidden[: ple.levels])
        self.levels = nn.ModuleList(
            CGCLevel(dims[i], dims[i + 1], self.n_tasks, ple, shared_gate=i + 1 < ple.levels)
            for i in range(ple.levels)
        )
        self.towers = nn.ModuleList(
            MLP(dims[-1], config.hidden[ple.levels :]) for _ in range(self.n_tasks)
        )

    def forward(self, batch: Batch) -> Logits:
        x = self.embed(batch.ids)  # (B, F*E)
        groups = DomainGroups(self.tasks.of(batch), self.n_tasks)
        task_h = shared_h = groups.sort(x)
        for level in self.levels:
            task_h, shared_h = level(groups, task_h, shared_h)
        cvr = groups.map(lambda t, h: self.towers[t](h), task_h)
        return Logits(ctr=self.ctr(x).squeeze(1), cvr=groups.restore(cvr).squeeze(1))
