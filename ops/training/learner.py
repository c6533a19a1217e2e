"""One model learning online from labeled mini-batches: one optimizer step per mini-batch.

The learner knows nothing of Kafka. Each `step(minibatch)`:

1. drops examples seen before by (impression_id, kind) (`ops.training.dedupe`),
2. hashes the raw features into ids (`model.features`) and maps the domain strings to
   indices with vocabularies that grow online up to the model's capacity (`model.vocab`),
3. weights the rows for delayed feedback by the configured method (`ops.training.delayed`:
   which rows the main model learns, the weight of each row's conversion term, a click
   term of 0 for copies of a click already counted; ES-DFM and DEFER also step their
   auxiliary delay model here), runs the model and its registered loss (for MMN the
   dynamic weights N / N_c are recomputed by the loss inside every batch),
4. takes one optimizer step (Adagrad by default: fused for the towers and, with `sparse`,
   a sparse step for the embedding tables that touches only the batch's rows).

A step costs what its rows cost: the embedding update is sparse; consecutive mini-batches
are gathered until they hold `min_step_rows` rows (or the stream ends) before one step, so
a sparse stream's mini-batches of 5 rows do not each pay for a whole optimizer step (the
gathered rows travel in snapshots, so a resumed run steps exactly as an uninterrupted
one); and the loss is a sum over the rows divided by max(rows, nominal_rows), so a small
step moves the model less than a full one (a mean would move it as far).

Scoring (`batch(rows, grow=False)`) never changes the vocabularies: unseen values map to
"other".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from model import zoo as models
from model.batch import Batch, BatchShare, Logits
from model.errors import SnapshotError
from model.features import Featurizer
from model.optimizers import model_optimizer
from model.scoring import ScoreRule, probability, rule_for, scored_logits
from model.snapshot import CHECKPOINT, on_cpu, restore, snapshot_state
from model.vocab import DomainVocab
from ops.errors import ConfigError
from ops.training import delayed
from ops.training.dedupe import Deduper
from ops.training.delayed.aux import DelayLearner
from ops.training.learner_config import LearnerConfig
from ops.training.rows import LabeledRows
from streaming.events import OTHER_DOMAIN


@dataclass(frozen=True)
class StepResult:
    """What one step did: rows trained, duplicates dropped, the batch loss (nan if nothing trained)."""

    trained: int
    dropped: int
    loss: float


class OnlineLearner:
    """A model, its optimizers, featurizer, domain vocabularies and deduper, stepped per mini-batch.

    device: where the model lives and its steps run; batches are built on the CPU (the
    gathered rows, the delay model and snapshots stay there) and moved for the forward pass.
    """

    def __init__(self, config: LearnerConfig, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.spec = models.get(config.model)
        self.method = delayed.get(config.method)
        torch.manual_seed(config.seed)
        # Initialised on the CPU (the same weights for a seed on every device), then moved.
        self.model = self.spec.build(config.model_config).to(self.device)
        self.model.train()
        name, lr = config.optimizer, config.lr
        if lr == "auto":
            raise ConfigError("lr auto is a search over learners (mmn train), not one learner")
        assert name is not None and lr is not None  # LearnerConfig resolves both
        self.optimizer = model_optimizer(name, self.model, lr=lr, sparse=config.sparse)
        self.aux = (
            DelayLearner(
                config.model_config.n_fields,
                config.model_config.buckets,
                nominal_rows=config.nominal_rows,
                optimizer=name,
                lr=lr,
            )
            if self.method.uses_aux
            else None
        )
        self.featurizer = Featurizer(config.featurizer)
        self.types, self.scenarios = (
            DomainVocab(n, other=OTHER_DOMAIN, min_count=config.vocab_min_count)
            for n in (config.model_config.n_types, config.model_config.n_scenarios)
        )
        self.deduper = Deduper(config.dedupe_horizon_s)
        self.examples_seen = 0  # rows taken in, gathered for a step or trained
        self.examples_trained = 0  # rows an optimizer step has been taken on
        self.batches = 0
        self.watermark: int | None = None
        self.pending: list[tuple[Batch, np.ndarray]] = []  # rows gathered for the next step
        self.last_scored: dict[str, np.ndarray] | None = None  # see train_batch

    def batch(
        self, rows: LabeledRows, keep: np.ndarray | None = None, *, grow: bool = False
    ) -> Batch:
        """The tensor batch of rows (only those where keep is True).

        grow: count the rows' domain values into the vocabularies first (training does;
        scoring never: an unseen value is "other").
        """
        ids = self.featurizer.columns(rows.features, n_rows=len(rows.impression_ids))
        types = _indices(self.types, rows.conv_types, grow)
        scenarios = _indices(self.scenarios, rows.scenarios, grow)
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
        """Take in the rows not seen before; one optimizer step once min_step_rows are gathered
        or the stream ends; advance the watermark."""
        keep = self.deduper.admit(rows.impression_ids, rows.kinds, rows.label_ts)
        dropped = int((~keep).sum())
        self.advance(rows.watermark)
        if keep.any():
            kinds = np.asarray(rows.kinds, dtype=object)[keep]
            self.pending.append((self.batch(rows, keep, grow=True), kinds))
            self.examples_seen += len(kinds)
        gathered = sum(len(kinds) for _, kinds in self.pending)
        if gathered and (gathered >= self.config.min_step_rows or rows.end):
            return StepResult(trained=gathered, dropped=dropped, loss=self.flush())
        return StepResult(trained=0, dropped=dropped, loss=math.nan)

    def flush(self) -> float:
        """One optimizer step on the gathered rows (nan if none)."""
        if not self.pending:
            return math.nan
        batches, kinds = zip(*self.pending, strict=True)
        self.pending = []
        return self.train_batch(concat_batches(batches), np.concatenate(kinds))

    @property
    def score_rule(self) -> ScoreRule:
        """How this run is scored (`model.scoring`): p_cvr if click-only, else p_ctr * p_cvr."""
        return rule_for(self.config.click_only)

    def logits(self, batch: Batch) -> Logits:
        """The model's logits as trained and scored (the constant CTR logit if click-only)."""
        return scored_logits(self.model(batch), self.score_rule)

    def train_batch(self, batch: Batch, kinds: np.ndarray | None = None) -> float:
        """One forward, backward and optimizer step on a tensor batch; the batch loss.

        kinds: the rows' example kinds (None: all `final`, labels known for good), which
        the delayed-feedback method weights by; the auxiliary delay model, if any, learns
        from the rows whose delay they tell.
        """
        if kinds is None:
            kinds = np.full(len(batch), "final", dtype=object)
        self.batches += 1
        # The delay model weighs the rows before it learns from them (no peeking at labels).
        aux = self.aux.predict(batch.ids) if self.aux is not None else None
        if self.aux is not None:
            self.aux.learn(batch.ids, kinds, batch.conversion.numpy())
        main = self.method.trains(kinds)
        if not main.all():
            batch, kinds = _rows(batch, main), kinds[main]
            aux = None if aux is None else aux.rows(torch.from_numpy(np.flatnonzero(main)))
        if len(batch) == 0:
            return math.nan
        loss = self.loss(batch, kinds, aux)
        self.zero_grad()
        loss.backward()
        self.optimizer_step()
        self.examples_trained += len(batch)
        return float(loss.detach())

    def loss(
        self,
        batch: Batch,
        kinds: np.ndarray,
        aux: Any = None,
        share: BatchShare | None = None,
    ) -> torch.Tensor:
        """The loss of a step on rows (the forward pass), as the optimizer takes it.

        The registered losses are means over the rows: rescaled to sum / max(rows, nominal).
        share: the rows are part of a step split across processes (`ops.training.
        data_parallel`): the loss is their share of the whole step's.
        """
        on_device = batch.to(self.device)
        logits = self.logits(on_device)
        p = probability(logits, self.score_rule).detach().cpu()
        # The predictions of this forward pass, made before the step (progressive validation).
        self.last_scored = {
            "click": batch.click.numpy(),
            "conversion": batch.conversion.numpy(),
            "conv_type": batch.conv_type.numpy(),
            "scenario": batch.scenario.numpy(),
            "p": p.numpy(),
        }
        weight = self.method.weights(kinds, batch.click * batch.conversion, p, aux)
        on_device = dataclasses.replace(
            on_device,
            weight=(batch.weight * weight).to(self.device),
            click_weight=(batch.click_weight * self.method.click_weights(kinds)).to(self.device),
        )
        rows = len(batch) if share is None else len(share)
        loss = self.spec.loss(logits, on_device, share=share)
        return loss * (rows / max(rows, self.config.nominal_rows))

    def zero_grad(self) -> None:
        """Clear the gradients of every parameter the model's optimizers step."""
        self.optimizer.zero_grad(set_to_none=True)

    def optimizer_step(self) -> None:
        """Step the model's optimizers (dense, and sparse embeddings) on the gradients."""
        self.optimizer.step()

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer the learner steps: dense, sparse embeddings, the delay model's."""
        aux = [] if self.aux is None else self.aux.optimizer.parts
        return [*self.optimizer.parts, *aux]

    def set_lr(self, lr: float) -> None:
        """Apply a new learning rate to every parameter group of every optimizer."""
        self.optimizer.set_lr(lr)
        if self.aux is not None:
            self.aux.optimizer.set_lr(lr)

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
        facts, its `checkpoint` what only a resume needs (optimizer state, the gathered rows,
        the dedupe keys, the delay model), which a serving file leaves out.

        extra: more plain data to keep beside it (the trainer's consumer offsets).
        """
        state = snapshot_state(
            self.model,
            name=self.config.model,
            config=self.config.model_config,
            vocabs={"conv_type": self.types, "scenario": self.scenarios},
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
        optimizer = self.optimizer.state_dict()
        state[CHECKPOINT] = {
            # The combined optimizer's parts under the keys snapshots have always used.
            "optimizer": on_cpu(optimizer["dense"]),
            "sparse_optimizer": on_cpu(optimizer["sparse"]),
            "aux": None if self.aux is None else self.aux.state(),
            "dedupe": self.deduper.state(),
            "pending": _pending_state(self.pending),
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
        learner.model.load_state_dict(restored.model.state_dict())
        learner.optimizer.load_state_dict(
            {"dense": resume["optimizer"], "sparse": resume["sparse_optimizer"]}
        )
        if learner.aux is not None:
            learner.aux.load_state(resume["aux"])
        learner.types = restored.vocabs["conv_type"]
        learner.scenarios = restored.vocabs["scenario"]
        learner.deduper = Deduper.from_state(resume["dedupe"])
        learner.pending = _pending_of(resume.get("pending"))
        learner.examples_seen = int(extra["examples_seen"])
        # Snapshots from before it was recorded: every row seen but those still gathered.
        learner.examples_trained = int(
            extra.get(
                "examples_trained",
                learner.examples_seen - sum(len(kinds) for _, kinds in learner.pending),
            )
        )
        learner.batches = int(extra["batches"])
        learner.watermark = extra["watermark"]
        return learner


def _indices(vocab: DomainVocab, values: Sequence[str], grow: bool) -> np.ndarray:
    if grow:
        vocab.observe(values)
    # Few distinct domains per batch: look up each distinct value once.
    codes = {value: vocab.index(value) for value in dict.fromkeys(values)}
    return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=len(values))


def concat_batches(batches: Sequence[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    return Batch(**{name: torch.cat([vars(b)[name] for b in batches]) for name in vars(batches[0])})


def _pending_state(pending: list[tuple[Batch, np.ndarray]]) -> dict[str, Any] | None:
    if not pending:
        return None
    batches, kinds = zip(*pending, strict=True)
    return {"batch": dict(vars(concat_batches(batches))), "kinds": np.concatenate(kinds).tolist()}


def _pending_of(state: Mapping[str, Any] | None) -> list[tuple[Batch, np.ndarray]]:
    if state is None:
        return []
    return [(Batch(**state["batch"]), np.asarray(state["kinds"], dtype=object))]


def _rows(batch: Batch, keep: np.ndarray) -> Batch:
    pick = torch.from_numpy(np.flatnonzero(keep))
    return Batch(**{name: t[pick] for name, t in vars(batch).items()})
