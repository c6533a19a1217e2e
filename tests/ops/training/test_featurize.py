"""The featurize step: rows into tensor batches, vocabularies grown by training only, and
its state (the vocabularies) round trip."""

from __future__ import annotations

import numpy as np
import torch
from learner_rows import learner_config, make_rows

from ops.training.featurize import Featurize


def test_its_state_round_trips_and_encodes_as_before() -> None:
    config = learner_config(vocab_min_count=1)
    featurize = Featurize.fresh(config)
    featurize.batch(make_rows(0, 64), grow=True)
    restored = Featurize.from_state(config.featurizer, featurize.state())
    assert restored.state() == featurize.state()
    assert restored.types.values == featurize.types.values != [featurize.types.other]
    rows = make_rows(1000, 32)
    batch, again = featurize.batch(rows), restored.batch(rows)
    for a, b in zip(vars(batch).values(), vars(again).values(), strict=True):
        assert torch.equal(a, b)


def test_keep_picks_rows_and_only_growing_counts_domain_values() -> None:
    featurize = Featurize.fresh(learner_config(vocab_min_count=1))
    rows = make_rows(0, 10)
    before = featurize.state()
    scored = featurize.batch(rows)
    assert featurize.state() == before and scored.conv_type.tolist() == [0] * 10  # "other"
    keep = np.arange(10) % 2 == 0
    trained = featurize.batch(rows, keep, grow=True)
    assert len(trained) == 5 and featurize.state() != before
    assert torch.equal(trained.ids, featurize.batch(rows).ids[torch.from_numpy(keep)])
