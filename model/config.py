"""The shape of the problem and of the towers, shared by every model."""

from __future__ import annotations

from dataclasses import dataclass

from model.errors import ModelConfigError


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of the problem and of the towers, shared by every model.

    Attributes:
        n_fields: number of feature fields F.
        buckets: hash buckets per field (ids are in [0, buckets)).
        n_types: capacity of the conversion-type vocabulary, "other" included.
        n_scenarios: capacity of the display-scenario vocabulary, "other" included.
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
