"""What the single-task CVR baselines (DNN, MT-FwFM) add to meet the two-logit contract.

These models predict CVR only and train on clicked rows. The contract still asks for a CTR logit
(p_ctcvr = p_ctr * p_cvr downstream), so they carry `ClickRate`: one learned logit, the batch
click rate, with no features. `clicked_cvr_loss` fits it with the CTR log loss and the CVR network
with the CVR log loss on clicked rows only. On click-only data (the Criteo search log: every row
is a click) the click-rate logit only grows and the CVR term is the whole loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.batch import Batch, BatchShare, Logits


class ClickRate(nn.Module):
    """A feature-free CTR logit: one learned bias, the same for every row."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, rows: int) -> Tensor:
        return self.bias.expand(rows)  # (B,)


def clicked_cvr_loss(logits: Logits, batch: Batch, *, share: BatchShare | None = None) -> Tensor:
    """CTR log loss over all rows (weighted by Batch.click_weight) plus CVR log loss over clicked rows (by Batch.weight).

    Each term is averaged over the rows it covers (the CVR term over clicked rows; a batch with no
    click contributes only the CTR term).

    >>> from model.batch import Batch, Logits
    >>> b = Batch.of(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, dtype=torch.long),
    ...              torch.zeros(2, dtype=torch.long), click=torch.tensor([1.0, 0.0]),
    ...              conversion=torch.tensor([1.0, 0.0]))
    >>> loss = clicked_cvr_loss(Logits(ctr=torch.zeros(2), cvr=torch.tensor([0.0, 50.0])), b)
    >>> round(loss.item(), 4)  # 2 * log 2: the unclicked row's CVR logit is ignored
    1.3863
    """
    whole = share or BatchShare(batch.conv_type, batch.scenario, batch.click, 0)
    ctr_rows = F.binary_cross_entropy_with_logits(logits.ctr, batch.click, reduction="none")
    ctr = (batch.click_weight * ctr_rows).sum() / len(whole)
    clicked = batch.click * batch.weight
    cvr_rows = F.binary_cross_entropy_with_logits(logits.cvr, batch.conversion, reduction="none")
    return ctr + (clicked * cvr_rows).sum() / whole.click.sum().clamp(min=1.0)
