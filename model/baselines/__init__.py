"""The paper's baselines under the shared model contract, registered by name on import.

Single-task: `dnn` (CVR only), `esmm` (CTR + CVR towers). Multi-task, tasks = conversion types or
display scenarios: `mmoe_type`, `mmoe_scen`, `ple_type`, `ple_scen`. Multi-domain: `star_type`,
`star_scen`, `mtfwfm` (per conversion type).

Losses: the CVR-only models (`dnn`, `mtfwfm`) train with `clicked_cvr_loss` (CVR log loss on
clicked rows, plus the CTR log loss of their one-parameter click rate); every model with a CTR
tower trains with ESMM's loss (model.losses.esmm_loss), as MMN does without its dynamic weight.

param_sets counts domain-specific parameter sets (the paper's scalability figure): 0 for the
single-task models, one per task or domain for the others (each optimises one dimension, N_t or
N_s, never the N_t x N_s product). datasets counts separate training datasets (the paper's
convenience figure): 1, except STAR, which the STAR paper trains on one dataset per domain
(this implementation itself reads mixed batches).
"""

from __future__ import annotations

from functools import partial

from model.baselines.dnn import DNN
from model.baselines.esmm import ESMM
from model.baselines.mmoe import MMoE
from model.baselines.mtfwfm import MTFwFM
from model.baselines.ple import PLE
from model.baselines.routing import SCENARIOS, TYPES, DomainAxis
from model.baselines.single_task import clicked_cvr_loss
from model.baselines.star import STAR
from model.config import ModelConfig
from model.losses import esmm_loss
from model.spec import ModelSpec


def _none(_: ModelConfig) -> int:
    return 0


def _one(_: ModelConfig) -> int:
    return 1


# Registered in the order of the paper's Tables 2 and 3.
_AXES: tuple[tuple[DomainAxis, str], ...] = ((TYPES, "type"), (SCENARIOS, "scen"))

SPECS: list[ModelSpec] = []

SPECS.append(
    ModelSpec(
        name="dnn",
        description="DNN: embeddings -> MLP -> CVR, trained on clicked rows; constant CTR logit",
        build=DNN,
        loss=clicked_cvr_loss,
        param_sets=_none,
        datasets=_one,
    )
)
SPECS.append(
    ModelSpec(
        name="esmm",
        description="ESMM: shared embeddings, CTR and CVR towers, ESMM loss",
        build=ESMM,
        loss=esmm_loss,
        param_sets=_none,
        datasets=_one,
    )
)
for axis, short in _AXES:
    SPECS.append(
        ModelSpec(
            name=f"mmoe_{short}",
            description=f"MMoE, tasks = {axis.name}s: shared experts, a gate and tower per {axis.name}",
            build=partial(MMoE, tasks=axis),
            loss=esmm_loss,
            param_sets=axis.size,
            datasets=_one,
        )
    )
for axis, short in _AXES:
    SPECS.append(
        ModelSpec(
            name=f"ple_{short}",
            description=f"PLE, tasks = {axis.name}s: 2 CGC levels, experts/gates/tower per {axis.name}",
            build=partial(PLE, tasks=axis),
            loss=esmm_loss,
            param_sets=axis.size,
            datasets=_one,
        )
    )
SPECS.append(
    ModelSpec(
        name="mtfwfm",
        description="MT-FwFM: per-type field-pair weights and linear terms, CVR on clicked rows",
        build=MTFwFM,
        loss=clicked_cvr_loss,
        param_sets=lambda config: config.n_types,
        datasets=_one,
    )
)
for axis, short in _AXES:
    SPECS.append(
        ModelSpec(
            name=f"star_{short}",
            description=f"STAR, domains = {axis.name}s: partitioned norm, star FCN, auxiliary net",
            build=partial(STAR, domains=axis),
            loss=esmm_loss,
            param_sets=axis.size,
            datasets=axis.size,
        )
    )
