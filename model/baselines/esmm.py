"""ESMM (Ma et al., SIGIR 2018): shared embeddings feeding a CTR tower and a CVR tower.

Both towers are MLPs of `config.hidden` (512-256-128-128) -> 1; p_ctcvr = p_ctr * p_cvr is formed
by the loss (model.losses), which fits CTR on every row and CTCVR on every row.
"""

from __future__ import annotations

from torch import nn

from model.batch import Batch, Logits
from model.config import ModelConfig
from model.layers import MLP, FieldEmbedding


class ESMM(nn.Module):
    """Shared field embeddings, one CTR tower, one CVR tower."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        self.ctr = MLP(self.embed.out_dim, config.hidden)
        self.cvr = MLP(self.embed.out_dim, config.hidden)

    def forward(self, batch: Batch) -> Logits:
        x = self.embed(batch.ids)  # (B, F*E)
        return Logits(ctr=self.ctr(x).squeeze(1), cvr=self.cvr(x).squeeze(1))
