"""MMoE (Ma et al., KDD 2018) with conversion types or display scenarios as its tasks.

Shared experts replace the shared bottom; each task has its own softmax gate over the experts and
its own tower. A row is one task's example (its type, or its scenario), so it goes through its
own task's gate and tower only (model.baselines.routing). The experts take the first
`expert_layers` widths of `config.hidden` (512-256) and the towers the rest (128-128 -> 1), so a
row's CVR path has the paper's depth. The CTR tower is ESMM's, as in MMN, and the model trains
with the ESMM loss: only the CVR network differs from ESMM's.

Domain-specific parameter sets: one gate and one tower per task (N_t, or N_s).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from model.baselines.mixture import expert, mix
from model.baselines.routing import DomainAxis, DomainGroups
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.errors import ModelConfigError
from model.layers import MLP, FieldEmbedding


@dataclass(frozen=True, kw_only=True)
class MMoEConfig:
    """MMoE's own hyper-parameters.

    n_experts: shared experts (4: each expert costs about one CVR tower's first two layers,
        so 4 keeps training within ~2x ESMM's cost).
    expert_layers: how many leading widths of ModelConfig.hidden form an expert (2: 512-256);
        the remaining widths form each task's tower.
    """

    n_experts: int = 4
    expert_layers: int = 2

    def __post_init__(self) -> None:
        if self.n_experts < 1 or self.expert_layers < 1:
            raise ModelConfigError(
                f"MMoEConfig needs n_experts >= 1 and expert_layers >= 1, got {self}"
            )


class MMoE(nn.Module):
    """Shared embeddings and experts; per-task gates and CVR towers; ESMM's CTR tower."""

    def __init__(
        self, config: ModelConfig, tasks: DomainAxis, mmoe: MMoEConfig = MMoEConfig()
    ) -> None:
        super().__init__()
        if mmoe.expert_layers >= len(config.hidden):
            raise ModelConfigError(
                f"MMoEConfig.expert_layers={mmoe.expert_layers} leaves no tower layer of "
                f"hidden={config.hidden}; use fewer expert layers or more hidden widths"
            )
        self.tasks, self.n_tasks = tasks, tasks.size(config)
        self.embed = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        in_dim, split = self.embed.out_dim, mmoe.expert_layers
        self.ctr = MLP(in_dim, config.hidden)
        self.experts = nn.ModuleList(
            expert(in_dim, config.hidden[:split]) for _ in range(mmoe.n_experts)
        )
        self.gates = nn.ModuleList(nn.Linear(in_dim, mmoe.n_experts) for _ in range(self.n_tasks))
        self.towers = nn.ModuleList(
            MLP(config.hidden[split - 1], config.hidden[split:]) for _ in range(self.n_tasks)
        )

    def forward(self, batch: Batch) -> Logits:
        x = self.embed(batch.ids)  # (B, F*E)
        groups = DomainGroups(self.tasks.of(batch), self.n_tasks)
        xs = groups.sort(x)
        experts = torch.stack([e(xs) for e in self.experts], dim=1)  # (B, K, D), domain order
        cvr = groups.map(lambda t, xt, et: self.towers[t](mix(self.gates[t](xt), et)), xs, experts)
        return Logits(ctr=self.ctr(x).squeeze(1), cvr=groups.restore(cvr).squeeze(1))
