"""MMN computed literally as in the paper's auto-masking (Sec. 2.3): the reference semantics.

Every one of the N_t x N_s domain towers runs over the whole mini-batch and the outputs
are combined with the masks m_ts = I[type == t, scenario == s]. It shares MMN's parameter
layout (same state_dict), so a snapshot of either loads into the other, and the tests
check the fast grouped path against it. It is ~100x slower: use it for checking only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.losses import mmn_loss
from model.mmn import MMN, ComposedTower
from model.spec import MMN_ONLINE_LR, ModelSpec


class MaskedTower(ComposedTower):
    """All domain towers over the whole batch, masked sum (the paper's Eq. for p_cvr(X))."""

    def forward(self, x: Tensor, conv_type: Tensor, scenario: Tensor) -> Tensor:
        x = self.padded(x)
        n_types = self.linears[0].type_w.shape[0]
        n_scen = self.linears[0].scen_w.shape[0]
        out = x.new_zeros(len(x))
        for t in range(n_types):
            for s in range(n_scen):
                h = x
                for layer in self.linears[:-1]:
                    w, b = layer.compose(t, s)
                    h = torch.relu(h @ w + b)
                w, b = self.linears[-1].compose(t, s)
                mask = ((conv_type == t) & (scenario == s)).to(x.dtype)
                out = out + mask * (h @ w + b).squeeze(-1)
        return out


SPECS: list[ModelSpec] = []

SPECS.append(
    ModelSpec(
        name="mmn_masked",
        description="MMN by literal auto-masking (all towers, masked sum): slow reference for tests",
        build=lambda c: MMN(c, cvr=MaskedTower),
        loss=mmn_loss,
        param_sets=lambda c: c.n_types + c.n_scenarios + 1,
        datasets=lambda c: 1,
        lr=MMN_ONLINE_LR,
    )
)
