"""One model learning online from labeled mini-batches: one optimizer step per mini-batch.

The learner knows nothing of Kafka. It composes steps, each a small object with its own
state (which `state()` puts together into one snapshot and `from_state` takes apart):

1. `Deduper` (`ops.training.dedupe`): drops examples seen before by (impression_id, kind);
2. `Featurize` (`ops.training.featurize`): hashes the raw features into ids and maps the
   domain strings to indices with vocabularies that grow online up to the model's capacity;
3. `PendingRows` (`ops.training.pending`): holds new rows back until `min_step_rows` of them (or
   the stream's end) make a step, so a sparse stream's mini-batches of 5 rows do not each
   pay for a whole optimizer step;
4. `Weigh` (`ops.training.weigh`): the delayed-feedback method's rows and weights (ES-DFM
   and DEFER also step their auxiliary delay model there);
5. `ModelUpdate` (`ops.training.update`): runs the model and its registered loss (for MMN
   the dynamic weights N / N_c are recomputed inside every batch) and takes one optimizer
   step (Adagrad by default, a sparse step for the embedding tables with `sparse`).

The learner itself keeps its place in the stream: the watermark and its counts of rows
and steps. Scoring (`batch(rows)`) never changes the vocabularies: unseen values map to
"other".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from model.batch import Batch, BatchShare
from model.errors import SnapshotError
from model.scoring import ScoreRule, probability, rule_for
from model.snapshot import CHECKPOINT, restore, snapshot_state
from ops.errors import ConfigError
from ops.training.dedupe import Deduper
from ops.training.delayed.aux import DelayPrediction
from ops.training.featurize import Featurize
from ops.training.learner_config import LearnerConfig
from ops.training.pending import PendingRows
from ops.training.rows import LabeledRows
from ops.training.update import ModelUpdate
from ops.training.weigh import Weigh


@dataclass(frozen=True)
class StepResult:
    """What one step did: rows trained, duplicates dropped, the batch loss (nan if nothing trained)."""

    trained: int
    dropped: int
    loss: float


class OnlineLearner:
    """A model learning online through its steps: dedupe, featurize, gather, weigh, update.

    device: where the model lives and its steps run; batches are built on the CPU (the
    gathered rows, the delay model and snapshots stay there) and moved for the forward pass.
    """

    def __init__(self, config: LearnerConfig, device: torch.device | str = "cpu") -> None:
        if config.lr == "auto":
            raise ConfigError("lr auto is a search over learners (mmn train), not one learner")
        assert config.lr is not None  # LearnerConfig resolves it
        self.config = config
        # The model first: its weights are those of config's seed, whatever the method.
        self.update = ModelUpdate(
            config, config.lr, rule_for(config.click_only), torch.device(device)
        )
        self.weigh = Weigh.fresh(config, config.lr)
        self.featurize = Featurize.fresh(config)
        self.deduper = Deduper(config.dedupe_horizon_s)
        self.pending = PendingRows(config.min_step_rows)
        self.examples_seen = 0  # rows taken in, gathered for a step or trained
        self.examples_trained = 0  # rows an optimizer step has been taken on
        self.batches = 0
        self.watermark: int | None = None
        self.last_scored: dict[str, np.ndarray] | None = None  # see loss

    @property
    def model(self) -> nn.Module:
        """The model being trained (the update step's)."""
        return self.update.model

    @property
    def device(self) -> torch.device:
        """Where the model lives and its steps run."""
        return self.update.device

    @property
    def score_rule(self) -> ScoreRule:
        """How this run is scored (`model.scoring`): p_cvr if click-only, else p_ctr * p_cvr."""
        return self.update.score_rule

    def batch(
        self, rows: LabeledRows, keep: np.ndarray | None = None, *, grow: bool = False
    ) -> Batch:
        """The tensor batch of rows (`Featurize.batch`; grow: training's, counts domain values)."""
        return self.featurize.batch(rows, keep, grow=grow)

    def step(self, rows: LabeledRows) -> StepResult:
        """Take in the rows not seen before; one optimizer step once min_step_rows are gathered
        or the stream ends; advance the watermark."""
        keep = self.deduper.admit(rows.impression_ids, rows.kinds, rows.label_ts)
        dropped = int((~keep).sum())
        self.advance(rows.watermark)
        if keep.any():
            kinds = np.asarray(rows.kinds, dtype=object)[keep]
            self.pending.add(self.batch(rows, keep, grow=True), kinds)
            self.examples_seen += len(kinds)
        if self.pending.ready(rows.end):
            trained = len(self.pending)
            return StepResult(trained=trained, dropped=dropped, loss=self.flush())
        return StepResult(trained=0, dropped=dropped, loss=math.nan)

    def flush(self) -> float:
        """One optimizer step on the gathered rows (nan if none)."""
        taken = self.pending.take()
        return math.nan if taken is None else self.train_batch(*taken)

    def train_batch(self, batch: Batch, kinds: np.ndarray | None = None) -> float:
        """One forward, backward and optimizer step on a tensor batch; the batch loss.

        kinds: the rows' example kinds (None: all `final`, labels known for good), which
        the delayed-feedback method weighs by (`Weigh.select`).
        """
        if kinds is None:
            kinds = np.full(len(batch), "final", dtype=object)
        self.batches += 1
        batch, kinds, aux = self.weigh.select(batch, kinds)
        if len(batch) == 0:
            return math.nan
        loss = self.loss(batch, kinds, aux)
        self.update.zero_grad()
        loss.backward()
        self.update.step()
        self.examples_trained += len(batch)
        return float(loss.detach())

    def loss(
        self,
        batch: Batch,
        kinds: np.ndarray,
        aux: DelayPrediction | None = None,
        share: BatchShare | None = None,
    ) -> torch.Tensor:
        """The loss of a step on rows (the forward pass), weighed, as the optimizer takes it.

        Keeps the forward pass's predictions, made before the step, in `last_scored` (the
        trainer's progressive validation reads them). share: see `ModelUpdate.loss`.
        """
        on_device = batch.to(self.device)
        logits = self.update.logits(on_device)
        p = probability(logits, self.score_rule).detach().cpu()
        self.last_scored = {
            "click": batch.click.numpy(),
            "conversion": batch.conversion.numpy(),
            "conv_type": batch.conv_type.numpy(),
            "scenario": batch.scenario.numpy(),
            "p": p.numpy(),
        }
        weight, click_weight = self.weigh.weights(batch, kinds, p, aux)
        on_device = dataclasses.replace(
            on_device, weight=weight.to(self.device), click_weight=click_weight.to(self.device)
        )
        return self.update.loss(logits, on_device, share)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer the learner steps: dense, sparse embeddings, the delay model's."""
        return [*self.update.optimizer.parts, *self.weigh.optimizers()]

    def set_lr(self, lr: float) -> None:
        """Apply a new learning rate to every parameter group of every optimizer."""
        self.update.optimizer.set_lr(lr)
        self.weigh.set_lr(lr)

    def advance(self, watermark: float | None) -> None:
        """Move the watermark forward to watermark (never back), expiring dedupe keys."""
        # The end-of-stream batch may carry an infinite watermark: it moves nothing.
        if watermark is None or not math.isfinite(watermark):
            return
        if self.watermark is None or watermark > self.watermark:
            self.watermark = int(watermark)
            self.deduper.expire(self.watermark)

    def state(self, **extra: Any) -> dict[str, Any]:
        """A `model.snapshot` state, servable as is: its `extra` holds the small training
        facts, its `checkpoint` what only a resume needs (the steps' states: optimizers,
        the delay model, the dedupe keys, the gathered rows), which a serving file leaves out.

        extra: more plain data to keep beside it (the trainer's consumer offsets).
        """
        state = snapshot_state(
            self.model,
            name=self.config.model,
            config=self.config.model_config,
            vocabs=self.featurize.vocabs,
            featurizer=self.config.featurizer,
            score=self.score_rule,
            extra={
                "learner": self.config.state(),
                "examples_seen": self.examples_seen,
                "examples_trained": self.examples_trained,
                "batches": self.batches,
                "watermark": self.watermark,
                **extra,
            },
        )
        state[CHECKPOINT] = {
            **self.update.state(),  # "optimizer", "sparse_optimizer"
            "aux": self.weigh.state(),
            "dedupe": self.deduper.state(),
            "pending": self.pending.state(),
        }
        return state

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], device: torch.device | str = "cpu"
    ) -> OnlineLearner:
        """The learner whose `state()` this is, ready to continue training on device."""
        restored = restore(state)
        extra = restored.extra
        # Snapshots from before checkpoints were kept apart hold the resume state in extra.
        resume = state.get(CHECKPOINT) or extra
        if "optimizer" not in resume:
            raise SnapshotError(
                "this snapshot is a serving file without its checkpoint: a run resumes only "
                "from a checkpoint (`SnapshotStore.load_latest`)"
            )
        learner = cls(LearnerConfig.from_state(extra["learner"]), device)
        learner.update.load_state(restored.model.state_dict(), resume)
        learner.weigh.load_state(resume["aux"])
        learner.featurize = Featurize.from_state(learner.config.featurizer, state["vocabs"])
        learner.deduper = Deduper.from_state(resume["dedupe"])
        learner.pending = PendingRows.from_state(
            resume.get("pending"), learner.config.min_step_rows
        )
        learner.examples_seen = int(extra["examples_seen"])
        # Snapshots from before it was recorded: every row seen but those still gathered.
        learner.examples_trained = int(
            extra.get("examples_trained", learner.examples_seen - len(learner.pending))
        )
        learner.batches = int(extra["batches"])
        learner.watermark = extra["watermark"]
        return learner
