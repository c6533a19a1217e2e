"""Which arm of an experiment a user belongs to: a salted hash of the user id.

The hash is SHA-256 of the salt and the user id, so it is the same in every process and
on every machine (Python's own `hash` of a string is not). Its first 8 bytes give a point
u in [0, 1); the arms, sorted by name, own consecutive slices of [0, 1) as wide as their
share of the split, so the assignment does not depend on the order the arms are listed.

>>> split = Split({"control": 1, "treatment": 1}, salt="exp-1")
>>> split.arm("user-42") == Split({"treatment": 1, "control": 1}, salt="exp-1").arm("user-42")
True
>>> split.arm("user-42") in ("control", "treatment")
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from ops.errors import ConfigError

CACHE_SIZE = 1_000_000


def unit_hash(salt: str, user_id: str) -> float:
    """A point in [0, 1) fixed by (salt, user_id), uniform over user ids.

    >>> unit_hash("s", "u1") == unit_hash("s", "u1") != unit_hash("t", "u1")
    True
    """
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class Split:
    """Arms with their traffic weights, and the arm of a user."""

    def __init__(self, weights: Mapping[str, float], *, salt: str) -> None:
        if not weights:
            raise ConfigError("an experiment needs at least one --arm NAME=RUN")
        bad = {arm: w for arm, w in weights.items() if not w > 0}
        if bad:
            raise ConfigError(f"--split weights must be > 0, got {bad}")
        self.salt = salt
        self.arms = sorted(weights)
        total = float(sum(weights.values()))
        self.shares = {arm: weights[arm] / total for arm in self.arms}
        self._bounds = np.cumsum([self.shares[arm] for arm in self.arms])
        self._known: dict[str, str] = {}  # users come back: hash each once (bounded below)

    def arm(self, user_id: str) -> str:
        """The arm the user's traffic goes to."""
        found = self._known.get(user_id)
        if found is None:
            u = unit_hash(self.salt, user_id)
            index = int(np.searchsorted(self._bounds, u, side="right"))
            found = self.arms[min(index, len(self.arms) - 1)]
            if len(self._known) >= CACHE_SIZE:
                self._known.clear()
            self._known[user_id] = found
        return found
