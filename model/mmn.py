"""The Masked Multi-Domain Network (Ouyang et al., CIKM 2023) and its two ablations.

A CTR tower (plain MLP) and a CVR tower whose every layer, for a row of conversion type t
and display scenario s, uses W = W_base + W_type[t] + W_scen[s] (biases likewise):
N_t + N_s + 1 parameter sets serve N_t x N_s domains.

The paper's auto-masking runs every domain's tower over the whole batch and keeps each
row's own output (model.masked does exactly that, as the reference). `GroupedTower` computes
the same thing but only what each row needs: rows sorted by type, `W_base + W_type[k]`
composed per type and applied with one `torch._grouped_mm`, the scenario term added by a
second `_grouped_mm` over the rows sorted by scenario; the 1-unit output layer (which
`_grouped_mm` rejects: its strides must be multiples of 16 bytes) is a per-row dot product
with gathered, composed vectors. Gathers use index_select / embedding, whose backward is
index_add_, never `param[idx]` (index_put_ backward, ~30x slower on CPU).

`torch._grouped_mm` takes float32 on the CPU only (on CUDA it wants bf16 and a recent
GPU): elsewhere `segment_mm` computes the same products one group at a time (the
parameters unbound once, so the backward stacks the pieces' gradients instead of
materialising a full zero gradient per group).

A single request runs only its own domain's tower (`MMN.request`), composed once per
(t, s) and cached until the parameters change. Scoring a batch in eval mode without
autograd (a loaded snapshot) likewise composes `W_base + W_type` for every type once and
keeps it until a parameter changes or train() is called: the same sums, so the same floats.

>>> from model.config import ModelConfig
>>> from model.batch import Batch
>>> config = ModelConfig(n_fields=3, buckets=50, n_types=2, n_scenarios=3, hidden=(8, 4))
>>> model = MMN(config)
>>> batch = Batch.of(torch.randint(0, 50, (5, 3)), torch.tensor([0, 1, 1, 0, 1]), torch.tensor([2, 0, 2, 1, 1]))
>>> model(batch).cvr.shape
torch.Size([5])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.batch import Batch, Logits
from model.config import ModelConfig
from model.errors import ModelConfigError
from model.layers import MLP, FieldEmbedding, ParameterCache
from model.losses import esmm_loss, mmn_loss
from model.spec import MMN_ONLINE_LR, ModelSpec

_ALIGN = 4  # _grouped_mm wants row strides of 16 bytes: float32 widths in multiples of 4
GROUPED_MM_DEVICES = frozenset({"cpu"})  # where torch._grouped_mm takes float32


def segment_mm(h: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """Rows [offs[g-1], offs[g]) of h (B, in) times w[g] (G, in, out): (B, out).

    What `torch._grouped_mm(h, w, offs=offs)` computes, by one matmul per non-empty group.

    >>> h, w = torch.randn(5, 4), torch.randn(3, 4, 4)
    >>> offs = torch.tensor([2, 2, 5], dtype=torch.int32)
    >>> torch.allclose(segment_mm(h, w, offs), torch._grouped_mm(h, w, offs=offs), atol=1e-6)
    True
    """
    ends = offs.tolist()
    starts = [0, *ends[:-1]]
    pieces = [
        h[start:end] @ wg
        for start, end, wg in zip(starts, ends, w.unbind(0), strict=True)
        if end > start
    ]
    return torch.cat(pieces) if pieces else h.new_zeros(0, w.shape[-1])


def grouped_mm(h: Tensor, w: Tensor, offs: Tensor) -> Tensor:
    """torch._grouped_mm where it takes h's device and dtype, segment_mm elsewhere."""
    if h.device.type in GROUPED_MM_DEVICES and h.dtype == torch.float32:
        return torch._grouped_mm(h, w, offs=offs)
    return segment_mm(h, w, offs)


class ComposedLinear(nn.Module):
    """One CVR layer's parameters: W_base (in, out), W_type (T, in, out), W_scen (S, in, out), biases.

    The base is initialised like nn.Linear; the type and scenario parts start at zero, so
    an untrained MMN is one shared tower and each domain learns its deviation from it.
    """

    def __init__(self, in_dim: int, out_dim: int, n_types: int, n_scenarios: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.base_w = nn.Parameter(torch.empty(in_dim, out_dim).uniform_(-bound, bound))
        self.base_b = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))
        self.type_w = nn.Parameter(torch.zeros(n_types, in_dim, out_dim))
        self.type_b = nn.Parameter(torch.zeros(n_types, out_dim))
        self.scen_w = nn.Parameter(torch.zeros(n_scenarios, in_dim, out_dim))
        self.scen_b = nn.Parameter(torch.zeros(n_scenarios, out_dim))

    def compose(self, t: int, s: int) -> tuple[Tensor, Tensor]:
        """The (W, b) of domain (t, s)."""
        return (
            self.base_w + self.type_w[t] + self.scen_w[s],
            self.base_b + self.type_b[t] + self.scen_b[s],
        )


class CvrTower(nn.Module, ABC):
    """The part of MMN a variant replaces: forward(x (B, D), conv_type (B,), scenario (B,)) -> (B,) logits."""

    @abstractmethod
    def request(self, x: Tensor, t: int, s: int) -> Tensor:
        """(1,) logit of one row x (1, D) through domain (t, s) alone."""


class ComposedTower(CvrTower):
    """The CVR tower's parameters (hidden layers then a 1-unit output), and the single-request path.

    Subclasses say how a mixed batch is computed: forward(x (B, D), conv_type (B,), scenario (B,))
    -> (B,) logits. The input is zero-padded to a multiple of 4 columns (see _ALIGN).
    """

    def __init__(self, in_dim: int, config: ModelConfig, *, cache_size: int = 512) -> None:
        super().__init__()
        if any(w % _ALIGN for w in config.hidden):
            raise ModelConfigError(
                f"MMN tower widths must be multiples of {_ALIGN} (grouped matmul alignment), "
                f"got {config.hidden}"
            )
        self.pad = -in_dim % _ALIGN
        widths = (in_dim + self.pad, *config.hidden, 1)
        linears = [
            ComposedLinear(a, b, config.n_types, config.n_scenarios)
            for a, b in zip(widths, widths[1:], strict=False)
        ]
        self.layers = nn.ModuleList(linears)  # registers them: state_dict keys layers.N.*
        self.linears = linears  # the same modules, typed (a ModuleList's items are nn.Module)
        self._requests = ParameterCache(self, size=cache_size)  # (t, s) -> composed layers
        self._serving = ParameterCache(self)  # "types" -> per-type composed layers

    def train(self, mode: bool = True) -> ComposedTower:
        self._serving.clear()
        return super().train(mode)

    def serving(self) -> bool:
        """Whether a forward call may use cached compositions: eval mode, without autograd."""
        return not self.training and not torch.is_grad_enabled()

    def padded(self, x: Tensor) -> Tensor:
        return F.pad(x, (0, self.pad)) if self.pad else x

    @torch.no_grad()
    def request(self, x: Tensor, t: int, s: int) -> Tensor:
        """(1,) logit of one row x (1, D) through domain (t, s)'s tower alone."""
        h = self.padded(x)
        layers = self._composed(t, s)
        for w, b in layers[:-1]:
            h = torch.relu(torch.addmm(b, h, w))
        w, b = layers[-1]
        return torch.addmm(b, h, w).squeeze(-1)

    def _composed(self, t: int, s: int) -> list[tuple[Tensor, Tensor]]:
        return self._requests.get((t, s), lambda: [layer.compose(t, s) for layer in self.linears])


class GroupedTower(ComposedTower):
    """The exact fast path: each row through its own domain's composed layers, by grouped matmuls."""

    def forward(self, x: Tensor, conv_type: Tensor, scenario: Tensor) -> Tensor:
        n_types = self.linears[0].type_w.shape[0]
        n_scen = self.linears[0].scen_w.shape[0]
        by_type = torch.argsort(conv_type, stable=True)
        t = conv_type.index_select(0, by_type)
        s = scenario.index_select(0, by_type)
        # Rows in type order; the scenario term needs them in scenario order, and back.
        by_scen = torch.argsort(s, stable=True)
        from_scen = torch.empty_like(by_scen)
        from_scen[by_scen] = torch.arange(len(by_scen), device=by_scen.device)
        type_ends = torch.bincount(t, minlength=n_types).cumsum(0).to(torch.int32)
        scen_ends = torch.bincount(s, minlength=n_scen).cumsum(0).to(torch.int32)

        h = self.padded(x).index_select(0, by_type)  # (B, D) in type order
        typed = self._serving.get("types", self._typed) if self.serving() else None
        for i, layer in enumerate(self.linears[:-1]):
            if typed is None:  # composed here, so that gradients reach every part
                w = layer.base_w + layer.type_w
                bias = layer.base_b + F.embedding(t, layer.type_b)
            else:
                w, bias = typed[i][0], F.embedding(t, typed[i][1])
            by_t = grouped_mm(h, w, type_ends)
            by_s = grouped_mm(h.index_select(0, by_scen), layer.scen_w, scen_ends)
            bias = bias + F.embedding(s, layer.scen_b)
            h = torch.relu(by_t + by_s.index_select(0, from_scen) + bias)
        out = self.linears[-1]
        if typed is None:
            w = out.base_w[:, 0] + F.embedding(t, out.type_w[..., 0])
            b = out.base_b + F.embedding(t, out.type_b)
        else:
            w, b = F.embedding(t, typed[-1][0]), F.embedding(t, typed[-1][1])
        w = w + F.embedding(s, out.scen_w[..., 0])
        b = b + F.embedding(s, out.scen_b)
        logit = (h * w).sum(1) + b[:, 0]  # (B,) in type order
        return torch.empty_like(logit).index_copy(0, by_type, logit)

    def _typed(self) -> list[tuple[Tensor, Tensor]]:
        """Per layer, W_base + W_type and b_base + b_type for every type: (T, in, out), (T, out);
        the output layer's as (T, in), (T, 1). Element for element the sums forward makes."""
        layers = [(lay.base_w + lay.type_w, lay.base_b + lay.type_b) for lay in self.linears[:-1]]
        out = self.linears[-1]
        return [*layers, (out.base_w[:, 0] + out.type_w[..., 0], out.base_b + out.type_b)]


class CommonTower(CvrTower):
    """The ablation "common parameters only": one CVR MLP shared by every domain."""

    def __init__(self, in_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.mlp = MLP(in_dim, config.hidden)

    def forward(self, x: Tensor, conv_type: Tensor, scenario: Tensor) -> Tensor:
        return self.mlp(x).squeeze(-1)

    def request(self, x: Tensor, t: int, s: int) -> Tensor:
        return self.mlp(x).squeeze(-1)


class MMN(nn.Module):
    """Embeddings, a CTR MLP and a CVR tower (the part a variant replaces); returns Logits."""

    def __init__(self, config: ModelConfig, cvr: type[CvrTower] = GroupedTower) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        self.ctr = MLP(self.embedding.out_dim, config.hidden)
        self.cvr = cvr(self.embedding.out_dim, config)

    def forward(self, batch: Batch) -> Logits:
        x = self.embedding(batch.ids)  # (B, F*E)
        return Logits(self.ctr(x).squeeze(-1), self.cvr(x, batch.conv_type, batch.scenario))

    @torch.no_grad()
    def request(self, ids: Tensor, conv_type: int, scenario: int) -> Logits:
        """Logits (1,) of one request, ids (F,), running only its own domain's CVR tower."""
        x = self.embedding(ids.view(1, -1))
        return Logits(self.ctr(x).squeeze(-1), self.cvr.request(x, int(conv_type), int(scenario)))


SPECS: list[ModelSpec] = []

SPECS.append(
    ModelSpec(
        name="mmn",
        description="MMN: CVR layers W_base + W_type + W_scen, exact grouped fast path, dynamic weights",
        build=MMN,
        loss=mmn_loss,
        param_sets=lambda c: c.n_types + c.n_scenarios + 1,
        datasets=lambda c: 1,
        lr=MMN_ONLINE_LR,
    )
)
SPECS.append(
    ModelSpec(
        name="mmn_common",
        description="MMN ablation: common CVR parameters only (one shared tower), dynamic weights",
        build=lambda c: MMN(c, cvr=CommonTower),
        loss=mmn_loss,
        param_sets=lambda c: 1,
        datasets=lambda c: 1,
        lr=MMN_ONLINE_LR,
    )
)
SPECS.append(
    ModelSpec(
        name="mmn_nodw",
        description="MMN ablation: no dynamic weight (the plain ESMM loss of Eq. 2)",
        build=MMN,
        loss=esmm_loss,
        param_sets=lambda c: c.n_types + c.n_scenarios + 1,
        datasets=lambda c: 1,
        # Without the dynamic weight the CTCVR term keeps ESMM's scale, and the sweep put
        # its best online rate at ESMM's (docs/results.md).
    )
)
