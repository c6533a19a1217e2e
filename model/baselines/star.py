"""STAR (Sheng et al., CIKM 2021) with conversion types or display scenarios as its domains.

The three parts of the STAR paper, over shared field embeddings:
- Partitioned normalisation (PN): z' = (gamma * gamma_d) * (z - mean) / sqrt(var + eps)
  + (beta + beta_d), with shared gamma, beta and per-domain gamma_d, beta_d. The statistics are
  the batch's at train time and moving averages at eval, as in the paper. STAR feeds one domain
  per batch, so its batch statistics are that domain's; our batches are mixed (one dataset, as
  MMN), and a rare domain has a handful of rows per batch whose own statistics are noise, so the
  statistics are the whole mixed batch's, shared by every domain (as the paper's eval-time moving
  averages are); only the scale and shift are per domain.
- Star-topology FCN: each layer's weights are W_shared ⊙ W_d (elementwise) and its bias
  b_shared + b_d, widths `config.hidden` (512-256-128-128) -> 1. W_d starts at ones and b_d at
  zeros, so every domain starts from the shared network.
- Auxiliary network: a small MLP (`aux_hidden`, 64 -> 1) over the domain indicator's embedding
  concatenated with the field embeddings; its logit is added to the FCN's logit.
Each domain's composed layers run on that domain's rows only (model.baselines.routing): a loop over
the domains present in the batch, composing each one's weights once per step (in eval mode without
autograd, once until a parameter changes or train() is called).

The CTR tower is ESMM's, as in MMN, and the model trains with the ESMM loss.
Domain-specific parameter sets: one per domain (N_t, or N_s). Separate datasets: the paper trains
STAR on one dataset per domain, which is the figure reported; this implementation reads mixed
batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.baselines.routing import DomainAxis, DomainGroups
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.errors import ModelConfigError
from model.layers import MLP, FieldEmbedding, ParameterCache


@dataclass(frozen=True, kw_only=True)
class STARConfig:
    """STAR's own hyper-parameters.

    aux_hidden: widths of the auxiliary network before its 1-unit output ((64,): the paper's
        auxiliary network is a 2-layer FCN, much smaller than the main one).
    momentum: weight of the current batch in PN's moving averages (0.1, as torch's BatchNorm).
    eps: added to the variance in PN (1e-5).
    """

    aux_hidden: tuple[int, ...] = (64,)
    momentum: float = 0.1
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if not 0.0 < self.momentum <= 1.0 or self.eps <= 0.0:
            raise ModelConfigError(f"STARConfig needs 0 < momentum <= 1 and eps > 0, got {self}")


class StarParams(nn.Module):
    """One parameter set of the star: PN scale/shift and each FCN layer's weight and bias."""

    def __init__(self, widths: tuple[int, ...], *, shared: bool) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(widths[0]))
        self.shift = nn.Parameter(torch.zeros(widths[0]))
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            if shared:  # nn.Linear's default initialisation
                bound = 1.0 / math.sqrt(fan_in)
                w = torch.empty(fan_in, fan_out).uniform_(-bound, bound)
                b = torch.empty(fan_out).uniform_(-bound, bound)
            else:  # the domain starts as the shared network: W ⊙ 1 and b + 0
                w, b = torch.ones(fan_in, fan_out), torch.zeros(fan_out)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))


class PartitionedNorm(nn.Module):
    """PN's statistics: the batch's while training (kept as moving averages), those at eval."""

    running_mean: Tensor  # (D,) buffer
    running_var: Tensor  # (D,) buffer

    def __init__(self, dim: int, star: STARConfig) -> None:
        super().__init__()
        self.momentum, self.eps = star.momentum, star.eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D) normalised, before the shared and per-domain scale and shift."""
        if self.training:
            mean, var = x.mean(0), x.var(0, unbiased=False)
            with torch.no_grad():
                unbiased = var * (x.shape[0] / max(x.shape[0] - 1, 1))
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) * torch.rsqrt(var + self.eps)


class STAR(nn.Module):
    """Shared embeddings, PN, star-topology CVR FCN plus auxiliary network; ESMM's CTR tower."""

    def __init__(
        self, config: ModelConfig, domains: DomainAxis, star: STARConfig = STARConfig()
    ) -> None:
        super().__init__()
        self.domains, self.n_domains = domains, domains.size(config)
        self.embed = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        in_dim = self.embed.out_dim
        self.ctr = MLP(in_dim, config.hidden)
        widths = (in_dim, *config.hidden, 1)
        self.norm = PartitionedNorm(in_dim, star)
        self.shared = StarParams(widths, shared=True)
        own = [StarParams(widths, shared=False) for _ in range(self.n_domains)]
        self.partitions = nn.ModuleList(own)  # registers them: state_dict keys partitions.N.*
        self.own = own  # the same modules, typed (a ModuleList's items are nn.Module)
        self.indicator = nn.Embedding(self.n_domains, config.embed_dim)
        self.aux = MLP(in_dim + config.embed_dim, star.aux_hidden)
        self._serving = ParameterCache(self)  # domain -> its composed parameters, in eval

    def train(self, mode: bool = True) -> STAR:
        self._serving.clear()
        return super().train(mode)

    def _composed(self, d: int) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """Domain d's PN scale and shift and its star layers' (W_shared ⊙ W_d, b_shared + b_d)."""
        shared, own = self.shared, self.own[d]
        layers = [
            (shared.weights[i] * own.weights[i], shared.biases[i] + own.biases[i])
            for i in range(len(shared.weights))
        ]
        return shared.scale * own.scale, shared.shift + own.shift, layers

    def _fcn(self, d: int, z: Tensor) -> Tensor:
        """Domain d's PN scale/shift and composed star layers over its (n, D) normalised rows."""
        if not self.training and not torch.is_grad_enabled():  # serving: composed once
            scale, shift, layers = self._serving.get(d, lambda: self._composed(d))
        else:
            scale, shift, layers = self._composed(d)
        h = z * scale + shift
        for i, (w, b) in enumerate(layers):
            h = torch.addmm(b, h, w)  # (n, out)
            if i < len(layers) - 1:
                h = torch.relu(h)
        return h  # (n, 1)

    def forward(self, batch: Batch) -> Logits:
        x = self.embed(batch.ids)  # (B, F*E)
        domain = self.domains.of(batch)
        groups = DomainGroups(domain, self.n_domains)
        main = groups.restore(groups.map(self._fcn, groups.sort(self.norm(x))))  # (B, 1)
        aux = self.aux(torch.cat([x, self.indicator(domain)], dim=1))  # (B, 1)
        return Logits(ctr=self.ctr(x).squeeze(1), cvr=(main + aux).squeeze(1))
