"""One model learning online from labeled mini-batches: one optimizer step per mini-batch.

The learner knows nothing of Kafka. Each `step(minibatch)`:

1. drops examples seen before by (impression_id, kind) (`ops.training.dedupe`),
2. hashes the raw features into ids (`model.features`) and maps the domain strings to
   indices with vocabularies that grow online up to the model's capacity (`model.vocab`),
3. weights the rows for delayed feedback (below), runs the model and its registered loss
   (for MMN the dynamic weights N / N_c are recomputed by the loss inside every batch),
4. takes one optimizer step (Adagrad, fused, by default).

Delayed feedback. The joiner emits a click as a negative once its observation window has
passed without a conversion, and a `delayed-positive` correction if the conversion comes
later within the attribution window. Two policies:

- `plain`: the correction is one more positive example (weight 1), the earlier negative
  stays. Simple; the model under-estimates conversion rates by the share of fake negatives.
- `fnw`: fake negative weighting (Ktena et al., "Addressing Delayed Feedback for Continuous
  Training with Neural Networks in CTR Prediction", RecSys 2019, section 4.3). When every
  positive also appears once as a negative, the observed distribution is
  b(y=1|x) = p(y=1|x) / (1 + p(y=1|x)), and importance weights p/b give the loss
  - sum_pos (1 + p) log f(x) - sum_neg (1 - p)(1 + p) log(1 - f(x)),
  with p the model's own prediction with the gradient stopped. Here the delayed label is
  click * conversion, so p = p_ctr * p_cvr (ESMM's p_ctcvr) and the weight multiplies the
  row's sample weight (`Batch.weight`, applied by the loss to its terms). The correction is
  exact when the joiner emits every click as a negative first (observation window 0); with
  a longer window, positives decided inside it are weighted as if they had been duplicated.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from model import zoo as models
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.features import Featurizer, FeaturizerConfig
from model.losses import click_only
from model.snapshot import restore, snapshot_state
from model.vocab import DomainVocab
from ops.errors import ConfigError
from ops.training.dedupe import Deduper
from ops.training.optimizers import OPTIMIZERS, make_optimizer

DELAYED_FEEDBACK = ("plain", "fnw")


class LabeledRows(Protocol):
    """What the learner reads from a mini-batch (the joiner's decoded `minibatches` message)."""

    impression_ids: Sequence[str]
    kinds: Sequence[str]
    conv_types: Sequence[str]
    scenarios: Sequence[str]
    features: Mapping[str, Sequence[str]]
    click: Sequence[float]
    conversion: Sequence[float]
    label_ts: Sequence[int]
    watermark: int | None
    end: bool


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """The model and how it learns.

    model: registered model name (`model.zoo.names()`).
    model_config: shape of the model; n_fields must equal the featurizer's field count.
    featurizer: which raw fields become ids (Criteo's 18 by default).
    optimizer: adagrad (PyTorch's), adagrad-tf (TensorFlow's, the paper's), adam or sgd.
    lr: its learning rate.
    delayed_feedback: `plain` or `fnw` (see the module docstring).
    click_only: the stream has no non-clicked rows (the Criteo search log): the CTR logit is
        a constant, the CTR tower neither trained nor used, p_cvr the score (model.losses).
    dedupe_horizon_s: event-time seconds a (impression_id, kind) key is remembered.
    seed: torch seed for the initial weights.
    """

    model: str = "mmn_dw_clip"  # the offline study's best (README, "MMN as the paper ran it")
    model_config: ModelConfig
    featurizer: FeaturizerConfig = FeaturizerConfig()
    optimizer: str = "adagrad"
    lr: float = 0.01
    delayed_feedback: str = "plain"
    click_only: bool = False
    dedupe_horizon_s: int = 86_400
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"LearnerConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if self.delayed_feedback not in DELAYED_FEEDBACK:
            raise ConfigError(
                f"delayed feedback must be one of {DELAYED_FEEDBACK}, got {self.delayed_feedback!r}"
            )
        if self.model_config.n_fields != len(self.featurizer.fields):
            raise ConfigError(
                f"model_config.n_fields is {self.model_config.n_fields} but the featurizer has "
                f"{len(self.featurizer.fields)} fields"
            )
        if self.model_config.buckets != self.featurizer.buckets:
            raise ConfigError(
                f"model buckets {self.model_config.buckets} != featurizer buckets {self.featurizer.buckets}"
            )

    def state(self) -> dict[str, Any]:
        """Plain-data form, for snapshots and the registry's run config."""
        state = dataclasses.asdict(self)
        state["model_config"]["hidden"] = list(self.model_config.hidden)
        state["featurizer"] = self.featurizer.state()
        return state

    @staticmethod
    def from_state(state: Mapping[str, Any]) -> LearnerConfig:
        """The config whose `state()` this is."""
        fields = dict(state)
        shape = dict(fields.pop("model_config"))
        shape["hidden"] = tuple(shape["hidden"])
        return LearnerConfig(
            model_config=ModelConfig(**shape),
            featurizer=FeaturizerConfig.from_state(fields.pop("featurizer")),
            **fields,
        )


def fnw_weights(p: Tensor, label: Tensor) -> Tensor:
    """Fake negative weights (Ktena et al. 2019): 1 + p for positives, (1 - p)(1 + p) for negatives.

    >>> w = fnw_weights(torch.tensor([0.2, 0.2, 0.5]), torch.tensor([1.0, 0.0, 0.0]))
    >>> [round(x, 4) for x in w.tolist()]
    [1.2, 0.96, 0.75]
    """
    p = p.detach()
    return torch.where(label > 0.5, 1 + p, (1 - p) * (1 + p))


@dataclass(frozen=True)
class StepResult:
    """What one step did: rows trained, duplicates dropped, the batch loss (nan if nothing trained)."""

    trained: int
    dropped: int
    loss: float


class OnlineLearner:
    """A model, its optimizer, featurizer, domain vocabularies and deduper, stepped per mini-batch."""

    def __init__(self, config: LearnerConfig) -> None:
        self.config = config
        self.spec = models.get(config.model)
        torch.manual_seed(config.seed)
        self.model = self.spec.build(config.model_config)
        self.model.train()
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), lr=config.lr)
        self.featurizer = Featurizer(config.featurizer)
        self.types = DomainVocab(config.model_config.n_types)
        self.scenarios = DomainVocab(config.model_config.n_scenarios)
        self.deduper = Deduper(config.dedupe_horizon_s)
        self.examples_seen = 0
        self.batches = 0
        self.watermark: int | None = None

    def batch(self, rows: LabeledRows, keep: np.ndarray | None = None) -> Batch:
        """The tensor batch of rows (only those where keep is True), growing the vocabularies."""
        ids = self.featurizer.columns(rows.features, n_rows=len(rows.impression_ids))
        types = _indices(self.types, rows.conv_types)
        scenarios = _indices(self.scenarios, rows.scenarios)
        click = np.asarray(rows.click, dtype=np.float32)
        conversion = np.asarray(rows.conversion, dtype=np.float32)
        if keep is not None and not keep.all():
            ids, types, scenarios = ids[keep], types[keep], scenarios[keep]
            click, conversion = click[keep], conversion[keep]
        return Batch.of(
            torch.from_numpy(ids),
            torch.from_numpy(types),
            torch.from_numpy(scenarios),
            click=torch.from_numpy(click),
            conversion=torch.from_numpy(conversion),
        )

    def step(self, rows: LabeledRows) -> StepResult:
        """Train one optimizer step on the rows not seen before; advance the watermark."""
        keep = self.deduper.admit(rows.impression_ids, rows.kinds, rows.label_ts)
        dropped = int((~keep).sum())
        self._advance(rows.watermark)
        if not keep.any():
            return StepResult(trained=0, dropped=dropped, loss=math.nan)
        batch = self.batch(rows, keep)
        loss = self.train_batch(batch)
        return StepResult(trained=len(batch), dropped=dropped, loss=loss)

    def logits(self, batch: Batch) -> Logits:
        """The model's logits, with the constant CTR logit of click-only streams."""
        logits = self.model(batch)
        return click_only(logits) if self.config.click_only else logits

    def train_batch(self, batch: Batch) -> float:
        """One forward, backward and optimizer step on a tensor batch; the batch loss."""
        logits = self.logits(batch)
        if self.config.delayed_feedback == "fnw":
            p = torch.sigmoid(logits.ctr) * torch.sigmoid(logits.cvr)
            weight = batch.weight * fnw_weights(p, batch.click * batch.conversion)
            batch = dataclasses.replace(batch, weight=weight)
        loss = self.spec.loss(logits, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.examples_seen += len(batch)
        self.batches += 1
        return float(loss.detach())

    def _advance(self, watermark: float | None) -> None:
        # The end-of-stream batch may carry an infinite watermark: it moves nothing.
        if watermark is None or not math.isfinite(watermark):
            return
        if self.watermark is None or watermark > self.watermark:
            self.watermark = int(watermark)
            self.deduper.expire(self.watermark)

    def state(self, **extra: Any) -> dict[str, Any]:
        """A `model.snapshot` state (servable as is) whose `extra` holds the training state.

        extra: more plain data to keep beside it (the trainer's consumer offsets).
        """
        return snapshot_state(
            self.model,
            name=self.config.model,
            config=self.config.model_config,
            vocabs={"conv_type": self.types, "scenario": self.scenarios},
            featurizer=self.config.featurizer,
            extra={
                "learner": self.config.state(),
                "optimizer": self.optimizer.state_dict(),
                "dedupe": self.deduper.state(),
                "examples_seen": self.examples_seen,
                "batches": self.batches,
                "watermark": self.watermark,
                **extra,
            },
        )

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> OnlineLearner:
        """The learner whose `state()` this is, ready to continue training."""
        restored = restore(state)
        extra = restored.extra
        learner = cls(LearnerConfig.from_state(extra["learner"]))
        learner.model.load_state_dict(restored.model.state_dict())
        learner.optimizer.load_state_dict(extra["optimizer"])
        learner.types = restored.vocabs["conv_type"]
        learner.scenarios = restored.vocabs["scenario"]
        learner.deduper = Deduper.from_state(extra["dedupe"])
        learner.examples_seen = int(extra["examples_seen"])
        learner.batches = int(extra["batches"])
        learner.watermark = extra["watermark"]
        return learner


def _indices(vocab: DomainVocab, values: Sequence[str]) -> np.ndarray:
    # Few distinct domains per batch: grow and look up each distinct value once, in order of
    # first appearance so that the indices do not depend on the process's string hashing.
    codes = {value: vocab.add(value) for value in dict.fromkeys(values)}
    return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=len(values))
