"""The one score of a model: the probability a run was trained to estimate, from its logits.

Every model returns CTR and CVR logits; what a run's score is depends on how it learned:

- `ctcvr` (default): p_ctr * p_cvr, the estimate of P(conversion | click) that ESMM's loss
  fits on a stream with non-clicked rows;
- `cvr`: p_cvr alone, for a click-only run (`LearnerConfig.click_only`: every row a
  click, the CTR tower constant and never trained, so multiplying by it would only
  rescale the score by an untrained tower's output).

A snapshot records its rule (`model.snapshot`), and everything that scores one (the A/B
evaluator, holdout scoring, the benches, a single request) goes through `probability` or
`log_probability` here, so a run is scored the way it was trained, wherever it is scored.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from model.batch import Logits
from model.losses import click_only

ScoreRule = Literal["ctcvr", "cvr"]
SCORE_RULES: tuple[ScoreRule, ...] = ("ctcvr", "cvr")


def rule_for(click_only_run: bool) -> ScoreRule:
    """The score rule of a run: `cvr` for a click-only run, `ctcvr` otherwise."""
    return "cvr" if click_only_run else "ctcvr"


def scored_logits(logits: Logits, rule: ScoreRule) -> Logits:
    """The logits as the rule scores them: the CTR logit a constant (p_ctr = 1) under `cvr`."""
    if rule not in SCORE_RULES:
        raise ValueError(f"unknown score rule {rule!r}; one of {', '.join(SCORE_RULES)}")
    return click_only(logits) if rule == "cvr" else logits


def log_probability(logits: Logits, rule: ScoreRule) -> Tensor:
    """log of the score, computed in log space (no probability is rounded to 0), (B,).

    >>> logits = Logits(torch.tensor([0.0]), torch.tensor([0.0]))
    >>> round(log_probability(logits, "ctcvr").exp().item(), 4), log_probability(logits, "cvr").exp().item()
    (0.25, 0.5)
    """
    a = scored_logits(logits, rule)
    return F.logsigmoid(a.ctr) + F.logsigmoid(a.cvr)


def probability(logits: Logits, rule: ScoreRule) -> Tensor:
    """The score: p_ctr * p_cvr under `ctcvr`, p_cvr under `cvr`, (B,).

    >>> probability(Logits(torch.tensor([0.0]), torch.tensor([0.0])), "cvr").tolist()
    [0.5]
    """
    a = scored_logits(logits, rule)
    return torch.sigmoid(a.ctr) * torch.sigmoid(a.cvr)
