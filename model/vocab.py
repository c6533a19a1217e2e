"""The vocabulary of one domain dimension (conversion types, or display scenarios).

Index 0 is `other`: every value that is unseen, or that arrived after the vocabulary was
full, shares it, and so does `other` itself: the value a data source writes for the values
outside its top-K (streaming.events.OTHER_DOMAIN, which the caller passes in: `model`
imports nothing else of the project). The capacity (index 0 included) is fixed at construction because the
model's per-domain parameters are sized by it (ModelConfig.n_types / n_scenarios); the
vocabulary can grow online up to it. It travels with the model in snapshots as plain
lists.

>>> vocab = DomainVocab.top_k(["a", "b", "b", "c", "c", "c"], k=2, capacity=4, other="other")
>>> vocab.values
['other', 'c', 'b']
>>> vocab.index("c"), vocab.index("a"), vocab.index("never seen"), vocab.add("other")
(1, 0, 0, 0)
>>> vocab.add("a"), vocab.add("d"), len(vocab)
(3, 0, 4)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from model.errors import ModelConfigError


class DomainVocab:
    """Values to indices in [0, capacity); 0 is `other`, shared by every value not held."""

    def __init__(self, capacity: int, values: Iterable[str] = (), *, other: str) -> None:
        if capacity < 1:
            raise ModelConfigError(
                f"DomainVocab capacity must be >= 1 (the 'other' slot), got {capacity}"
            )
        self.capacity = capacity
        self.other = other
        self._values: list[str] = [other]
        self._index: dict[str, int] = {}
        for value in values:
            if self.add(value) == 0 and value != other:
                raise ModelConfigError(
                    f"DomainVocab of capacity {capacity} cannot hold {value!r}: raise the capacity"
                )

    @classmethod
    def top_k(
        cls,
        observed: Mapping[str, int] | Iterable[str],
        *,
        k: int,
        other: str,
        capacity: int | None = None,
    ) -> DomainVocab:
        """The k most frequent values (ties by value), room for growth up to capacity (default k + 1).

        observed: value counts, or the raw values to count.
        """
        counts = Counter(observed)  # a Mapping is taken as counts, an iterable is counted
        counts.pop(other, None)
        ranked = sorted(counts, key=lambda v: (-counts[v], v))[:k]
        return cls(capacity if capacity is not None else k + 1, ranked, other=other)

    @property
    def values(self) -> list[str]:
        """Values by index; index 0 is `other`."""
        return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def index(self, value: str) -> int:
        """The index of value, 0 (`other`) if it is not in the vocabulary."""
        return self._index.get(value, 0)

    def indices(self, values: Iterable[str]) -> np.ndarray:
        """int64 indices of many values."""
        return np.fromiter((self._index.get(v, 0) for v in values), dtype=np.int64)

    def add(self, value: str) -> int:
        """The index of value, adding it if there is room; 0 when the vocabulary is full."""
        found = self._index.get(value)
        if found is not None:
            return found
        if value == self.other or len(self._values) >= self.capacity:
            return 0
        self._index[value] = len(self._values)
        self._values.append(value)
        return self._index[value]

    def state(self) -> dict:
        """Plain-data form (for snapshots): {"capacity": int, "values": [other, ...]}."""
        return {"capacity": self.capacity, "values": list(self._values)}

    @classmethod
    def from_state(cls, state: Mapping) -> DomainVocab:
        """The vocabulary whose `state()` this is."""
        values = list(state["values"])
        if not values or not isinstance(values[0], str):
            raise ModelConfigError(
                f"a DomainVocab state's values start with its `other` value, got {values[:1]}"
            )
        return cls(int(state["capacity"]), values[1:], other=values[0])
