"""The generative model's parts: drift, domain-specific effects, rate fitting."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.synth_model import (
    LatentModel,
    SynthConfig,
    fit_offsets,
    scenario_targets,
    sigmoid,
)

N = 4000


def _items(rng: np.random.Generator, model: LatentModel) -> dict[str, np.ndarray]:
    return {name: rng.integers(0, len(emb), size=N) for name, emb in model.embeddings.items()}


def _score(config: SynthConfig, phase: float, t: int = 0, s: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1)
    model = LatentModel(config, rng, rows=10_000)
    values = _items(rng, model)
    types, scens = np.full(N, t), np.full(N, s)
    return model.cvr_score(values, types, scens, np.full(N, phase), np.zeros(N, dtype=int))


def test_weights_drift_over_time_unless_told_not_to():
    config = SynthConfig()
    early, late = _score(config, 0.0), _score(config, config.drift_angle)
    assert np.corrcoef(early, late)[0, 1] < 0.95
    still = SynthConfig(drift_angle=0.0)
    assert np.array_equal(_score(still, 0.0), _score(still, still.drift_angle))


def test_feature_effects_differ_by_type_and_by_scenario_over_shared_structure():
    config = SynthConfig()
    base = _score(config, 0.0, t=0, s=0)
    other_type, other_scen = _score(config, 0.0, t=5, s=0), _score(config, 0.0, t=0, s=5)
    for other in (other_type, other_scen):
        corr = np.corrcoef(base, other)[0, 1]
        assert 0.2 < corr < 0.9  # shared structure, yet not the same effects


def test_offsets_hit_both_margins():
    rng = np.random.default_rng(2)
    config = SynthConfig()
    t, s = rng.integers(0, 21, size=20_000), rng.integers(0, 17, size=20_000)
    score = rng.normal(size=20_000)
    window = np.full(21, 0.9)
    targets = scenario_targets(config, t, s)
    a, b = fit_offsets(score, t, s, window, np.asarray(config.type_rates), targets)
    p = sigmoid(score + a[t] + b[s]) * window[t]
    for d in range(21):
        assert p[t == d].mean() == pytest.approx(config.type_rates[d], rel=1e-3)
    for d in range(17):
        assert p[s == d].mean() == pytest.approx(targets[d], rel=1e-3)
