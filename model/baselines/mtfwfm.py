"""MT-FwFM (Pan et al., 2019): a field-weighted factorisation machine per conversion type.

Shared field embeddings e_i; for conversion type t, per-type field-pair weights r_t(i,j), per-type
field-wise linear vectors w_t,i and a per-type bias b_t:

    cvr logit = b_t + sum_i <w_t,i, e_i> + sum_{i<j} r_t(i,j) <e_i, e_j>

(the linear term is FwFM's field-wise linear vector, "FiLV"). The per-type rows are gathered with
`index_select`, so a row's gradient reaches only its own type's weights. It is a CVR model trained
on clicked rows (`clicked_cvr_loss`), with a feature-free learned CTR logit, as DNN.
Domain-specific parameter sets: one per conversion type (N_t). One dataset: the type selects each
row's weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.baselines.single_task import ClickRate
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.layers import FieldEmbedding


class MTFwFM(nn.Module):
    """Shared embeddings; per-type bias, field-wise linear vectors and field-pair weights."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        f, e, t = config.n_fields, config.embed_dim, config.n_types
        self.n_types = t
        self.embed = FieldEmbedding(f, config.buckets, e)
        self.bias = nn.Parameter(torch.zeros(t))
        self.linear = nn.Parameter(torch.zeros(t, f * e))
        self.pair_weights = nn.Parameter(torch.ones(t, f * (f - 1) // 2))
        self.ctr = ClickRate()

    def pairs(self) -> Tensor:
        """(P,) flat (F*F) index of each field pair i < j; made per call, not kept as a buffer,
        so that a model built on the meta device and loaded with assign=True is complete."""
        f = self.embed.n_fields
        first, second = torch.triu_indices(f, f, offset=1)
        return first * f + second

    def forward(self, batch: Batch) -> Logits:
        t = batch.conv_type
        emb = self.embed.fields(batch.ids)  # (B, F, E)
        dots = (
            torch.bmm(emb, emb.transpose(1, 2)).flatten(1).index_select(1, self.pairs())
        )  # (B, P)
        pair = (dots * self.pair_weights.index_select(0, t)).sum(1)
        linear = (emb.flatten(1) * self.linear.index_select(0, t)).sum(1)
        cvr = self.bias.index_select(0, t) + linear + pair
        return Logits(ctr=self.ctr(emb.shape[0]), cvr=cvr)
