"""The vocabulary of one domain dimension (conversion types, or display scenarios).

Index 0 is `other`: every value that is unseen, or that arrived after the vocabulary was
full, shares it, and so does `other` itself: the value a data source writes for the values
outside its top-K (streaming.events.OTHER_DOMAIN, which the caller passes in: `model`
imports nothing else of the project). The capacity (index 0 included) is fixed at construction because the
model's per-domain parameters are sized by it (ModelConfig.n_types / n_scenarios); the
vocabulary can grow online up to it. It travels with the model in snapshots as plain
lists.

Online growth is by frequency (`observe`): the values a stream brings are counted in a
Misra-Gries heavy-hitter sketch of `sketch_size` counters (a value's count is under-
estimated by at most N / (sketch_size + 1) after N observations, and any value more
frequent than that is kept), and a value gets a slot only once its count reaches
`min_count` and it is among the most counted values still without one, as many as there
are free slots. So a stream that opens with rare values leaves the slots to the values
that turn out frequent, instead of handing them out first come. A slot once given is
never taken back (the model has trained its parameters), so when the vocabulary is full
the rest share `other`. `index` and `indices` (scoring) never change anything.

>>> vocab = DomainVocab.top_k(["a", "b", "b", "c", "c", "c"], k=2, capacity=4, other="other")
>>> vocab.values
['other', 'c', 'b']
>>> vocab.index("c"), vocab.index("a"), vocab.index("never seen"), vocab.add("other")
(1, 0, 0, 0)
>>> vocab.add("a"), vocab.add("d"), len(vocab)
(3, 0, 4)
>>> online = DomainVocab(3, other="other", min_count=2)
>>> online.observe(["rare", "x", "x", "y", "other"]).tolist(), online.values
([0, 1, 1, 0, 0], ['other', 'x'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from model.errors import ModelConfigError

MIN_COUNT = 100
"""Default rows a value needs before it gets its own slot (a domain with fewer rows than
about a tenth of a 1,024-row mini-batch would train its parameters on noise)."""


class DomainVocab:
    """Values to indices in [0, capacity); 0 is `other`, shared by every value not held."""

    def __init__(
        self,
        capacity: int,
        values: Iterable[str] = (),
        *,
        other: str,
        min_count: int = MIN_COUNT,
        sketch_size: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ModelConfigError(
                f"DomainVocab capacity must be >= 1 (the 'other' slot), got {capacity}"
            )
        if min_count < 1:
            raise ModelConfigError(f"DomainVocab min_count must be >= 1, got {min_count}")
        self.capacity = capacity
        self.other = other
        self.min_count = min_count
        self.sketch_size = sketch_size if sketch_size is not None else max(64, 8 * capacity)
        self.counts: dict[str, int] = {}  # the heavy-hitter sketch of values without a slot
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

    def observe(self, values: Sequence[str]) -> np.ndarray:
        """Count values, give slots to those now frequent (module docstring); their indices."""
        if len(self._values) < self.capacity:
            fresh = Counter(v for v in values if v not in self._index and v != self.other)
            if fresh:
                self._count(fresh)
                self._admit()
        return self.indices(values)

    def _count(self, batch: Counter) -> None:
        # Weighted Misra-Gries: add, and past sketch_size counters subtract the count of
        # the first one left out from all of them, dropping those that reach 0.
        for value, n in batch.items():
            self.counts[value] = self.counts.get(value, 0) + n
        if len(self.counts) > self.sketch_size:
            cut = sorted(self.counts.values(), reverse=True)[self.sketch_size]
            self.counts = {v: n - cut for v, n in self.counts.items() if n > cut}

    def _admit(self) -> None:
        free = self.capacity - len(self._values)
        ranked = sorted(self.counts, key=lambda v: (-self.counts[v], v))[:free]
        for value in ranked:
            if self.counts[value] >= self.min_count:
                del self.counts[value]
                self.add(value)

    def state(self) -> dict:
        """Plain-data form (for snapshots): capacity, values (`other` first), min_count,
        sketch_size, counts."""
        return {
            "capacity": self.capacity,
            "values": list(self._values),
            "min_count": self.min_count,
            "sketch_size": self.sketch_size,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_state(cls, state: Mapping) -> DomainVocab:
        """The vocabulary whose `state()` this is."""
        values = list(state["values"])
        if not values or not isinstance(values[0], str):
            raise ModelConfigError(
                f"a DomainVocab state's values start with its `other` value, got {values[:1]}"
            )
        vocab = cls(
            int(state["capacity"]),
            values[1:],
            other=values[0],
            min_count=int(state.get("min_count", MIN_COUNT)),
            sketch_size=state.get("sketch_size"),
        )
        vocab.counts = {str(v): int(n) for v, n in state.get("counts", {}).items()}
        return vocab
