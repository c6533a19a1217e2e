"""Drop examples the at-least-once joiner emits twice, in bounded memory.

After a restart the joiner may re-emit examples it had already published (Faust commits
its input offsets every few seconds, so what it decided after the last commit is decided
and sent again). A re-emitted example has the same (impression_id, kind) as the original
and the same label time, close to where the joiner's clock was when it stopped; the
trainer reads it shortly after the original in event time.

So a key only needs remembering for a horizon of label (event) time: keys are kept in
hourly buckets of label time and a bucket is forgotten once the watermark has passed its
end by more than the horizon. Memory is bounded by the example rate times the horizon,
whatever the length of the stream. A duplicate arriving later than that is trained twice;
the default horizon (one day of event time) is far longer than any joiner restart.

Keys are 64-bit BLAKE2b hashes of "impression_id, kind", the same in every process, so the
state can be saved in a snapshot and restored after a restart of the trainer itself.

>>> d = Deduper(horizon_s=7200)
>>> d.admit(["a", "a", "b"], ["negative", "delayed-positive", "negative"], [100, 900, 100]).tolist()
[True, True, True]
>>> d.admit(["a", "c"], ["negative", "negative"], [100, 120]).tolist()
[False, True]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

BUCKET_S = 3600


def example_key(impression_id: str, kind: str) -> int:
    """The signed 64-bit key of one example (stable across processes)."""
    digest = hashlib.blake2b(f"{impression_id}\x1f{kind}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class Deduper:
    """Admits each (impression_id, kind) once within `horizon_s` seconds of label time."""

    def __init__(self, horizon_s: int = 86_400) -> None:
        self.horizon_s = horizon_s
        self._seen: set[int] = set()
        self._buckets: dict[int, list[int]] = {}
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._seen)

    def admit(
        self,
        impression_ids: Sequence[str],
        kinds: Sequence[str],
        label_ts: Sequence[int] | np.ndarray,
    ) -> np.ndarray:
        """A bool mask over the rows: True for an example not seen before (it is remembered)."""
        keep = np.ones(len(impression_ids), dtype=bool)
        seen, buckets = self._seen, self._buckets
        for i, (impression_id, kind, ts) in enumerate(
            zip(impression_ids, kinds, label_ts, strict=True)
        ):
            key = example_key(impression_id, kind)
            if key in seen:
                keep[i] = False
                continue
            seen.add(key)
            buckets.setdefault(int(ts) // BUCKET_S, []).append(key)
        self.dropped += int((~keep).sum())
        return keep

    def expire(self, watermark: int) -> None:
        """Forget every bucket that ended more than the horizon before watermark."""
        oldest = (watermark - self.horizon_s) // BUCKET_S
        for bucket in [b for b in self._buckets if b < oldest]:
            self._seen.difference_update(self._buckets.pop(bucket))

    def state(self) -> dict:
        """Snapshot form: horizon, drop count and the remembered keys per bucket (tensors)."""
        return {
            "horizon_s": self.horizon_s,
            "dropped": self.dropped,
            "buckets": {
                str(b): torch.tensor(keys, dtype=torch.int64) for b, keys in self._buckets.items()
            },
        }

    @classmethod
    def from_state(cls, state: dict) -> Deduper:
        """The deduper whose `state()` this is."""
        deduper = cls(horizon_s=int(state["horizon_s"]))
        deduper.dropped = int(state["dropped"])
        for bucket, keys in state["buckets"].items():
            values = keys.tolist()
            deduper._buckets[int(bucket)] = values
            deduper._seen.update(values)
        return deduper
