"""The generative model behind the synthetic log: configuration, latent effects, rate fitting.

logit p_ever = a[type] + b[scen] + scale * (sum_f <e_f(x_f), w_f(time) + u_f[type] + v_f[scen]
                                                         + q_f[type, scen]>
               + c[type, scen]
               + a nonlinear user x category term + a type-specific effect of nb_clicks_1week)

e_f are random embeddings of every value of field f; w_f rotates slowly over the log's span
(drift); u_f and v_f are the type- and scenario-specific parts over the same embeddings
(shared structure, domain-specific effects). q_f and c are specific to each (type,
scenario) pair (`pair_effects`): with them the log is no longer additive in type and
scenario, as MMN's parameters (W_base + W_type + W_scen) are. The offsets a, b are fitted on the drawn rows
so that each type's and each scenario's mean sale probability equals its configured rate,
where p_sale = p_ever * P(delay <= 30 days) and the delay is exponential with a
type-specific mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import SimulatorError
from streaming.events import MAX_EVENT_TS

DAY_S = 86_400
WINDOW_S = 30 * DAY_S


class SynthConfigError(SimulatorError, ValueError):
    """A generator setting that cannot produce a log; the message names it."""


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    """One categorical field: distinct values, Zipf exponent, share of missing (-1) values."""

    name: str
    cardinality: int
    zipf: float = 1.0
    missing: float = 0.0
    effect: float = 1.0


# Cardinalities of the large fields are per million rows; see `_cardinality`.
DEFAULT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(name="product_age_group", cardinality=8, missing=0.6, effect=0.6),
    FieldSpec(name="device_type", cardinality=5, zipf=1.5, effect=0.8),
    FieldSpec(name="audience_id", cardinality=300, missing=0.7, effect=0.6),
    FieldSpec(name="product_gender", cardinality=10, missing=0.6, effect=0.5),
    FieldSpec(name="product_brand", cardinality=3000, missing=0.4, effect=1.0),
    FieldSpec(name="product_category2", cardinality=150, missing=0.3, effect=1.0),
    FieldSpec(name="product_category3", cardinality=400, missing=0.5, effect=0.8),
    FieldSpec(name="product_category4", cardinality=600, missing=0.7, effect=0.5),
    FieldSpec(name="product_category5", cardinality=500, missing=0.85, effect=0.3),
    FieldSpec(name="product_category6", cardinality=200, missing=0.92, effect=0.3),
    FieldSpec(name="product_category7", cardinality=50, missing=0.98, effect=0.2),
    FieldSpec(name="product_id", cardinality=120_000, zipf=0.9, effect=0.8),
    FieldSpec(name="user_id", cardinality=300_000, zipf=0.6, effect=0.6),
)


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """The generative model's parameters; the defaults give an oracle AUC of about 0.8.

    Attributes:
        type_rates: sale rate of each generative conversion type, most frequent first; the last one
            is the shared parameter set of the `type_tail` rare values ("other").
        scenario_rates: the same for display scenarios. Both margins must agree on the overall sale
            rate, so the scenario rates are shifted by one common logit offset to match the
            type-weighted mean of the drawn rows (the defaults need little).
        type_zipf: Zipf exponent of the conversion types' frequencies.
        scenario_zipf: Zipf exponent of the display scenarios' frequencies.
        type_tail: rare values sharing the last parameter set; they stay below the head values, so a
            reader's top-K maps them to "other".
        scenario_tail: the same for display scenarios.
        tail_weight: how frequent a rare value is at most, as a share of what a Zipf draw would make
            it.
        delay_days: mean conversion delay of each type (exponential; beyond 30 days: none).
        feature_scale: scale of all feature effects (the AUC knob).
        shared_weight: norm of the shared part of each field's weight vector.
        type_weight: norm of its conversion-type-specific part.
        scenario_weight: norm of its scenario-specific part.
        pair_effects: strength S of the effects specific to (type, scenario) pairs: pair weight
            vectors q_f[t, s] of per-coordinate scale S over every field's embeddings, and a pair
            logit offset c[t, s] of scale S (both before feature_scale). 0: additive. Drawn from
            their own random stream, so a seed gives the same log otherwise.
        drift_angle: how far (radians) the shared weights rotate over the log's span.
        dim: embedding size of the latent feature effects.
        start_ts: first click time of the log.
        days: span of the log in days.
        disorder_share: share of rows whose timestamp moves by up to disorder_s.
        disorder_s: how far such a row's timestamp moves at most, in seconds.
        ctr: mean click-through rate of the full-funnel variant.
    """

    type_rates: tuple[float, ...] = (
        0.10, 0.13, 0.12, 0.08, 0.16, 0.19, 0.07, 0.11, 0.15, 0.09, 0.14,
        0.06, 0.17, 0.10, 0.12, 0.18, 0.08, 0.13, 0.09, 0.16, 0.11,
    )  # fmt: skip
    scenario_rates: tuple[float, ...] = (
        0.145, 0.12, 0.15, 0.10, 0.13, 0.08, 0.11, 0.05, 0.09, 0.03,
        0.12, 0.07, 0.01, 0.10, 0.04, 0.06, 0.02,
    )  # fmt: skip
    type_zipf: float = 1.0
    scenario_zipf: float = 1.1
    type_tail: int = 6
    scenario_tail: int = 4
    tail_weight: float = 0.3
    delay_days: tuple[float, ...] = (
        2.0, 1.0, 4.0, 0.5, 3.0, 6.0, 1.5, 8.0, 2.5, 0.7, 5.0,
        10.0, 1.2, 3.5, 0.9, 7.0, 2.2, 4.5, 1.8, 12.0, 3.0,
    )  # fmt: skip
    feature_scale: float = 0.33
    shared_weight: float = 1.0
    type_weight: float = 0.8
    scenario_weight: float = 0.8
    pair_effects: float = 1.0
    drift_angle: float = np.pi / 3
    dim: int = 8
    fields: tuple[FieldSpec, ...] = DEFAULT_FIELDS
    start_ts: int = 1_596_412_800  # 2020-08-03 00:00 UTC, near the real log's start
    days: int = 90
    disorder_share: float = 0.005
    disorder_s: int = 600
    ctr: float = 0.05

    def __post_init__(self) -> None:
        for name in ("pair_effects", "type_zipf", "scenario_zipf"):
            if not getattr(self, name) >= 0:
                raise SynthConfigError(
                    f"SynthConfig.{name} must be >= 0, got {getattr(self, name)}"
                )
        if len(self.delay_days) != len(self.type_rates):
            raise SynthConfigError(
                f"delay_days has {len(self.delay_days)} entries but type_rates has "
                f"{len(self.type_rates)}: give one mean delay per conversion type"
            )
        for name in ("type_rates", "scenario_rates"):
            bad = [r for r in getattr(self, name) if not 0.0 < r < 1.0]
            if bad:
                raise SynthConfigError(f"{name} must lie strictly between 0 and 1, got {bad}")
        self._check_ranges()

    def _check_ranges(self) -> None:
        """Every scalar within what the generator can draw from (NaN fails every rule)."""
        rules: dict[str, tuple[float, float]] = {
            "type_zipf": (0.0, 100.0),
            "scenario_zipf": (0.0, 100.0),
            "type_tail": (0, 10_000),
            "scenario_tail": (0, 10_000),
            "tail_weight": (0.0, 1.0),
            "feature_scale": (0.0, 1e3),
            "shared_weight": (0.0, 1e3),
            "type_weight": (0.0, 1e3),
            "scenario_weight": (0.0, 1e3),
            "drift_angle": (-1e3, 1e3),
            "dim": (1, 10_000),
            "start_ts": (0, MAX_EVENT_TS - 10_000 * 86_400),
            "days": (1, 10_000),
            "disorder_share": (0.0, 1.0),
            "disorder_s": (0, 86_400),
            "ctr": (1e-6, 1.0),
        }
        for name, (low, high) in rules.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise SynthConfigError(
                    f"SynthConfig.{name} must be in [{low}, {high}], got {value}"
                )


def zipf_probs(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return weights / weights.sum()


def domain_probs(head: int, tail: int, exponent: float, tail_weight: float) -> np.ndarray:
    """Frequencies of head values (Zipf) then tail values (damped so they rank last)."""
    weights = 1.0 / np.arange(1, head + tail + 1) ** exponent
    weights[head:] *= tail_weight
    return weights / weights.sum()


def cardinality(spec: FieldSpec, rows: int) -> int:
    # Large id fields scale with the log (more rows, more products and users).
    if spec.cardinality >= 10_000:
        return max(100, int(spec.cardinality * rows / 1_000_000))
    return spec.cardinality


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class LatentModel:
    """Latent parameters: an embedding for every value and the weight vectors over them."""

    def __init__(self, config: SynthConfig, rng: np.random.Generator, rows: int) -> None:
        self.config = config
        n_types, n_scen, d = len(config.type_rates), len(config.scenario_rates), config.dim
        self.embeddings: dict[str, np.ndarray] = {}
        self.shared_a: dict[str, np.ndarray] = {}
        self.shared_b: dict[str, np.ndarray] = {}
        self.type_w: dict[str, np.ndarray] = {}
        self.scen_w: dict[str, np.ndarray] = {}
        self.click_w: dict[str, np.ndarray] = {}
        for spec in config.fields:
            card = cardinality(spec, rows)
            self.embeddings[spec.name] = rng.normal(size=(card + 1, d)) * spec.effect / np.sqrt(d)
            self.shared_a[spec.name] = rng.normal(size=d) * config.shared_weight
            self.shared_b[spec.name] = rng.normal(size=d) * config.shared_weight
            self.type_w[spec.name] = rng.normal(size=(n_types, d)) * config.type_weight
            self.scen_w[spec.name] = rng.normal(size=(n_scen, d)) * config.scenario_weight
            self.click_w[spec.name] = rng.normal(size=d)
        # Pair effects from a spawned stream: the draws above and after stay as they were.
        pair_rng = rng.spawn(1)[0]
        self.pair_w = {
            spec.name: pair_rng.normal(size=(n_types, n_scen, d)) * config.pair_effects
            for spec in config.fields
        }
        self.pair_offset = pair_rng.normal(size=(n_types, n_scen)) * config.pair_effects
        self.interaction = rng.normal(size=(d, d)) / np.sqrt(d)
        self.clicks_slope = rng.normal(size=n_types)
        self.click_scenario = rng.normal(size=n_scen) * 0.7

    def cvr_score(
        self,
        values: dict[str, np.ndarray],
        t: np.ndarray,
        s: np.ndarray,
        phase: np.ndarray,
        nb_clicks: np.ndarray,
        *,
        pairs: bool = True,
    ) -> np.ndarray:
        """The feature part of the conversion logit of each row (before domain offsets).

        pairs: include the pair effects (False: only the part additive in type and scenario).
        """
        cos, sin = np.cos(phase)[:, None], np.sin(phase)[:, None]
        total = self.pair_offset[t, s] if pairs else np.zeros(len(t))
        for name, emb in self.embeddings.items():
            w = cos * self.shared_a[name] + sin * self.shared_b[name]
            w += self.type_w[name][t] + self.scen_w[name][s]
            if pairs:
                w += self.pair_w[name][t, s]
            total += np.einsum("nd,nd->n", emb[values[name]], w)
        user = self.embeddings["user_id"][values["user_id"]]
        cat = self.embeddings["product_category2"][values["product_category2"]]
        # A saturating user x category taste: no additive model captures it exactly.
        total += 2.0 * np.tanh(4.0 * np.einsum("nd,de,ne->n", user, self.interaction, cat))
        clicks = np.tanh(np.log1p(np.maximum(nb_clicks, 0)) / 2)
        total += self.clicks_slope[t] * clicks
        return total * self.config.feature_scale

    def ctr_score(self, values: dict[str, np.ndarray], s: np.ndarray) -> np.ndarray:
        """The click logit of each impression, before the offset that sets the mean CTR."""
        total = self.click_scenario[s].copy()
        for name, emb in self.embeddings.items():
            total += emb[values[name]] @ self.click_w[name]
        return total


def fit_offsets(
    score: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    window: np.ndarray,
    type_targets: np.ndarray,
    scen_targets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Type and scenario logit offsets raked so both margins of mean p_sale hit their targets."""
    a = logit(type_targets).copy()
    b = np.zeros(len(scen_targets))
    nt, ns = np.bincount(t, minlength=len(a)), np.bincount(s, minlength=len(b))
    for _ in range(40):
        p = sigmoid(score + a[t] + b[s]) * window[t]
        mean_t = np.bincount(t, weights=p, minlength=len(a)) / np.maximum(nt, 1)
        a += np.where(nt > 0, logit(type_targets) - logit(np.clip(mean_t, 1e-6, 1 - 1e-6)), 0)
        p = sigmoid(score + a[t] + b[s]) * window[t]
        mean_s = np.bincount(s, weights=p, minlength=len(b)) / np.maximum(ns, 1)
        b += np.where(ns > 0, logit(scen_targets) - logit(np.clip(mean_s, 1e-6, 1 - 1e-6)), 0)
    return a, b


def scenario_targets(config: SynthConfig, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Scenario rates shifted by one logit offset so both margins imply the same overall rate."""
    overall = np.mean(np.asarray(config.type_rates)[t])
    base = logit(np.asarray(config.scenario_rates))
    share = np.bincount(s, minlength=len(base)) / len(s)
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.dot(share, sigmoid(base + mid)) < overall:
            lo = mid
        else:
            hi = mid
    return sigmoid(base + (lo + hi) / 2)


def offset_for_mean(score: np.ndarray, target: float) -> float:
    """The constant c with mean(sigmoid(score + c)) == target (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if sigmoid(score + mid).mean() < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
