"""DNN: the single-task CVR baseline (embeddings -> MLP 512-256-128-128 -> 1).

Conversion type and display scenario are ordinary feature fields here; nothing is domain-specific.
The CTR logit is a feature-free learned click rate (`ClickRate`), and the model trains with
`clicked_cvr_loss` (CVR log loss on clicked rows).
"""

from __future__ import annotations

from torch import nn

from model.baselines.single_task import ClickRate
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.layers import MLP, FieldEmbedding


class DNN(nn.Module):
    """Embeddings, one CVR MLP, and a constant learned CTR logit."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed = FieldEmbedding(config.n_fields, config.buckets, config.embed_dim)
        self.cvr = MLP(self.embed.out_dim, config.hidden)
        self.ctr = ClickRate()

    def forward(self, batch: Batch) -> Logits:
        x = self.embed(batch.ids)  # (B, F*E)
        return Logits(ctr=self.ctr(x.shape[0]), cvr=self.cvr(x).squeeze(1))
