"""The learner's featurize step: a mini-batch's columns into the tensor batch the model reads.

Raw features are hashed into ids (`model.features`); the conversion-type and scenario
strings map to indices with vocabularies that grow online up to the model's capacity
(`model.vocab`). Training counts a batch's domain values in first (`grow=True`); scoring
never does, so an unseen value is "other". The vocabularies are the step's state: a
snapshot keeps them under "vocabs" (`model.snapshot`), where serving reads them too.

>>> from model.features import FeaturizerConfig
>>> from model.vocab import DomainVocab
>>> featurize = Featurize(
...     FeaturizerConfig(fields=("f0",), numeric_fields=(), buckets=8),
...     types=DomainVocab(3, other="other", min_count=1),
...     scenarios=DomainVocab(2, other="other", min_count=1),
... )
>>> featurize.observe(["t1", "t1"], ["s1"])
>>> featurize.types.values, featurize.scenarios.values
(['other', 't1'], ['other', 's1'])
>>> Featurize.from_state(featurize.featurizer.config, featurize.state()).state() == featurize.state()
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from model.batch import Batch
from model.features import Featurizer, FeaturizerConfig
from model.vocab import DomainVocab
from ops.training.learner_config import LearnerConfig
from ops.training.rows import LabeledRows
from streaming.events import OTHER_DOMAIN


class Featurize:
    """The featurizer and the two domain vocabularies (conversion type, scenario)."""

    def __init__(
        self, featurizer: FeaturizerConfig, *, types: DomainVocab, scenarios: DomainVocab
    ) -> None:
        self.featurizer = Featurizer(featurizer)
        self.types, self.scenarios = types, scenarios

    @classmethod
    def fresh(cls, config: LearnerConfig) -> Featurize:
        """Empty vocabularies of the model's capacities, config's featurizer."""
        types, scenarios = (
            DomainVocab(n, other=OTHER_DOMAIN, min_count=config.vocab_min_count)
            for n in (config.model_config.n_types, config.model_config.n_scenarios)
        )
        return cls(config.featurizer, types=types, scenarios=scenarios)

    @property
    def vocabs(self) -> dict[str, DomainVocab]:
        """The vocabularies by the names snapshots keep them under."""
        return {"conv_type": self.types, "scenario": self.scenarios}

    def observe(self, conv_types: Sequence[str], scenarios: Sequence[str]) -> None:
        """Count domain values into the vocabularies (which may give them slots)."""
        self.types.observe(conv_types)
        self.scenarios.observe(scenarios)

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

    def state(self) -> dict[str, Any]:
        """The vocabularies' plain data, as a snapshot's "vocabs" holds them."""
        return {name: vocab.state() for name, vocab in self.vocabs.items()}

    @classmethod
    def from_state(cls, featurizer: FeaturizerConfig, state: Mapping[str, Any]) -> Featurize:
        """The step whose `state()` this is, with featurizer (kept in the learner's config)."""
        return cls(
            featurizer,
            types=DomainVocab.from_state(state["conv_type"]),
            scenarios=DomainVocab.from_state(state["scenario"]),
        )


def _indices(vocab: DomainVocab, values: Sequence[str], grow: bool) -> np.ndarray:
    if grow:
        vocab.observe(values)
    # Few distinct domains per batch: look up each distinct value once.
    codes = {value: vocab.index(value) for value in dict.fromkeys(values)}
    return np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=len(values))
