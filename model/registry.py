"""Models registered by name: how to build each and which loss trains it.

A variant is a different spec (another module or another loss), never a flag inside a
model. Every model honours one contract: `model(batch) -> Logits` with (B,) CTR and CVR
logits; the loss lives outside the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from model.batch import Batch, Logits
from model.errors import ModelConfigError


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of the problem and of the towers, shared by every model.

    n_fields: number of feature fields F.
    buckets: hash buckets per field (ids are in [0, buckets)).
    n_types, n_scenarios: sizes (capacities) of the domain vocabularies, "other" included.
    embed_dim: embedding size per field (10 in the paper).
    hidden: tower layer widths (512-256-128-128 in the paper).
    """

    n_fields: int
    buckets: int = 1 << 17
    n_types: int
    n_scenarios: int
    embed_dim: int = 10
    hidden: tuple[int, ...] = (512, 256, 128, 128)

    def __post_init__(self) -> None:
        for name in ("n_fields", "buckets", "n_types", "n_scenarios", "embed_dim"):
            if getattr(self, name) < 1:
                raise ModelConfigError(
                    f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}"
                )
        if not self.hidden or min(self.hidden) < 1:
            raise ModelConfigError(f"ModelConfig.hidden must be positive widths, got {self.hidden}")


LossFn = Callable[[Logits, Batch], Tensor]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A registered model.

    build: makes the module from the shared config.
    loss: the training loss of this model, (logits, batch) -> scalar.
    param_sets: number of domain-specific parameter sets (the paper's scalability figure).
    datasets: number of separate datasets training needs (the paper's convenience figure).
    """

    name: str
    description: str
    build: Callable[[ModelConfig], nn.Module]
    loss: LossFn
    param_sets: Callable[[ModelConfig], int]
    datasets: Callable[[ModelConfig], int]


_MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a spec to the registry; a name can be registered once."""
    if spec.name in _MODELS:
        raise ModelConfigError(f"model {spec.name!r} is registered twice")
    _MODELS[spec.name] = spec
    return spec


def get(name: str) -> ModelSpec:
    """The spec registered under name; an unknown name lists the known ones."""
    _load_all()
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelConfigError(
            f"unknown model {name!r}; registered: {', '.join(names())}"
        ) from None


def names() -> list[str]:
    """Every registered model name, in registration order."""
    _load_all()
    return list(_MODELS)


def _load_all() -> None:
    # Importing model.zoo registers every model; done lazily so registry has no import cycle.
    import model.zoo  # noqa: F401
