"""Every model by name: the one registry, built from the specs each model module lists.

This module imports the model modules; none of them imports it back.

>>> names()[:3]
['mmn', 'mmn_common', 'mmn_nodw']
>>> get("nope")
Traceback (most recent call last):
...
model.errors.ModelConfigError: unknown model 'nope'; registered: mmn, mmn_common, mmn_nodw, mmn_masked, dnn, esmm, mmoe_type, mmoe_scen, ple_type, ple_scen, mtfwfm, star_type, star_scen, mmn_dw_norm, mmn_dw_temp, mmn_dw_clip, mmn_dw_axes
"""

from __future__ import annotations

from model import baselines, dynamic_weights, masked, mmn
from model.errors import ModelConfigError
from model.spec import ModelSpec


def _by_name(*groups: list[ModelSpec]) -> dict[str, ModelSpec]:
    specs: dict[str, ModelSpec] = {}
    for spec in (s for group in groups for s in group):
        if spec.name in specs:
            raise ModelConfigError(f"model {spec.name!r} is registered twice")
        specs[spec.name] = spec
    return specs


_MODELS = _by_name(mmn.SPECS, masked.SPECS, baselines.SPECS, dynamic_weights.SPECS)


def get(name: str) -> ModelSpec:
    """The spec registered under name; an unknown name lists the known ones."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ModelConfigError(
            f"unknown model {name!r}; registered: {', '.join(names())}"
        ) from None


def names() -> list[str]:
    """Every registered model name, in registration order."""
    return list(_MODELS)
