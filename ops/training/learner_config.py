"""How a learner learns: the model, its shape and features, the optimizer and rate, the
delayed-feedback method; checked before anything is built.

It imports without torch (`mmn train --help` derives its options from it): the checks that
need the model registry import it when a config is made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from model.config import ModelConfig
from model.features import FeaturizerConfig
from model.vocab import MIN_COUNT
from ops.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """The model and how it learns.

    Attributes:
        model: registered model name (`model.zoo.names()`).
        model_config: shape of the model; n_fields must equal the featurizer's field count.
        featurizer: which raw fields become ids (Criteo's 18 by default).
        optimizer: adagrad (PyTorch's), adagrad-tf (TensorFlow's, the paper's), adam or sgd; none:
            the model's own (`ModelSpec.optimizer`, adagrad for every registered model).
        lr: its learning rate; none: the model's own (`ModelSpec.lr`: 0.005 for the MMN variants
            with a dynamic weight, 0.01 for the others); auto: `mmn train` races a grid of rates
            during a warm-up (`ops.training.lr_search`) and keeps the best.
        click_only: the stream has no non-clicked rows (the Criteo search log): the CTR logit is a
            constant, the CTR tower neither trained nor used, p_cvr the score (model.losses).
        method: delayed-feedback method: vanilla, wait, fnw, es-dfm or defer
            (`ops.training.delayed`); `mmn join --method` must name the same. fnw: the best of `mmn
            bench stream` on synthetic logs (README).
        sparse: embedding tables get sparse gradients and a sparse optimizer step (for adagrad and
            sgd the same arithmetic as the dense step, whose untouched rows do not move).
        nominal_rows: the loss is summed over a step's rows and divided by max(rows, nominal_rows),
            so smaller steps weigh less.
        min_step_rows: new rows gathered over consecutive mini-batches before an optimizer step (1:
            a step per mini-batch; see the module docstring).
        vocab_min_count: rows a conversion type or scenario needs before it gets its own slot
            (`model.vocab`; 1: first come, first served).
        dedupe_horizon_s: event-time seconds a (impression_id, kind) key is remembered.
        seed: torch seed for the initial weights.
    """

    model: str = "mmn_dw_clip"  # the offline study's best (README, "MMN as the paper ran it")
    model_config: ModelConfig
    featurizer: FeaturizerConfig = FeaturizerConfig()
    optimizer: str | None = None
    lr: float | Literal["auto"] | None = None
    click_only: bool = False
    method: str = "fnw"
    sparse: bool = True
    nominal_rows: int = 1024
    min_step_rows: int = 256
    vocab_min_count: int = MIN_COUNT
    dedupe_horizon_s: int = 86_400
    seed: int = 0

    def __post_init__(self) -> None:
        # Imported here: the CLI shows these options (`mmn train --help`) without torch.
        from model import zoo as models
        from model.optimizers import OPTIMIZERS
        from ops.training import delayed

        spec = models.get(self.model)
        # The model's own defaults are resolved here, so snapshots and the registry record
        # the rate a run really used.
        if self.optimizer is None:
            object.__setattr__(self, "optimizer", spec.optimizer)
        if self.lr is None:
            object.__setattr__(self, "lr", spec.lr)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"LearnerConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if self.lr != "auto" and not 0 < self.lr < float("inf"):  # type: ignore[operator]  # NaN too
            raise ConfigError(f"LearnerConfig.lr must be a number > 0, got {self.lr}")
        if self.seed < 0:
            raise ConfigError(f"LearnerConfig.seed must be >= 0, got {self.seed}")
        if self.dedupe_horizon_s < 0:
            raise ConfigError(
                f"LearnerConfig.dedupe_horizon_s must be >= 0 seconds, got {self.dedupe_horizon_s}"
            )
        if self.method not in delayed.names():
            raise ConfigError(
                f"LearnerConfig.method is {self.method!r}; choose one of "
                f"{', '.join(delayed.STREAM_METHODS)} (oracle: mmn bench stream only)"
            )
        for name in ("nominal_rows", "min_step_rows", "vocab_min_count"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LearnerConfig.{name} must be >= 1, got {getattr(self, name)}")
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
