"""Which snapshot of a run serves an impression, and read-only scoring with it.

The serving snapshot of an impression at event time t is the run's newest snapshot whose
watermark is <= t: it has trained only on labels decided before t, so its prediction could
have been made when the impression happened. Which snapshot that is, is known for good
once the run has a snapshot with a watermark beyond t (watermarks never go back), or once
the run's trainer has read the whole stream (its latest snapshot's offsets are past every
partition's end marker): until then a later snapshot might still qualify, and the
evaluator waits rather than score with a snapshot that depends on how fast the trainer ran.

Scoring never changes a model: the snapshot's own featurizer hashes the features, and a
conversion type or scenario its vocabularies do not hold maps to index 0, "other".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from model.batch import Batch
from model.features import Featurizer, FeaturizerConfig
from model.scoring import probability
from model.snapshot import LoadedModel, restore
from ops.errors import EvaluationError
from ops.evaluation.featurizing import MemoFeaturizer
from ops.evaluation.finality import Row
from ops.metrics import EPS
from ops.store.database import Run, Snapshot
from ops.store.deltas import Link, StateCache, resolve
from ops.store.snapshot_chain import read_link

SCORE_CHUNK = 4096  # rows per forward pass; a fixed size keeps the floats batch-independent


@dataclass(frozen=True)
class Known:
    """One registered snapshot: version, watermark (None: trained on nothing), offsets, file,
    and the version its file is a delta of (None: a full one)."""

    version: int
    watermark: int | None
    offsets: dict[str, int]
    path: str
    sha256: str
    parent: int | None = None

    @property
    def link(self) -> Link:
        return Link(self.version, self.path, self.sha256, self.parent)


class ServingIndex:
    """The registered snapshots of each arm's run, refreshed from the registry when needed."""

    def __init__(self, Session: sessionmaker[Session], runs: Sequence[str]) -> None:
        self.Session = Session
        self.known: dict[str, list[Known]] = {run: [] for run in runs}

    def refresh(self) -> None:
        """Read every run's snapshots again (new ones are announced by being registered)."""
        with self.Session() as session:
            for run in self.known:
                rows = session.execute(
                    select(Snapshot)
                    .join(Run, Run.id == Snapshot.run_id)
                    .where(Run.name == run)
                    .order_by(Snapshot.version)
                ).scalars()
                self.known[run] = [
                    Known(
                        r.version, r.watermark, dict(r.offsets), r.path, r.sha256, r.parent_version
                    )  # fmt: skip
                    for r in rows
                ]

    def links(self, run: str) -> dict[int, Link]:
        """The run's known snapshots as delta-chain links, by version."""
        return {k.version: k.link for k in self.known[run]}

    def determined(self, run: str, ts: int, end_offsets: Mapping[str, int] | None) -> bool:
        """True when no snapshot registered later can serve ts any more.

        end_offsets: the offset of every partition's end marker once all have been read
        (None before): a run whose latest snapshot has read past them is complete.
        """
        known = self.known[run]
        if any(k.watermark is not None and k.watermark > ts for k in known):
            return True
        if end_offsets is None or not known:
            return False
        latest = known[-1].offsets
        return all(latest.get(p, 0) > offset for p, offset in end_offsets.items())

    def serving(self, run: str, ts: np.ndarray) -> np.ndarray:
        """The version of the serving snapshot of each impression time in ts: the newest
        snapshot whose watermark is <= ts, -1 where the run had none yet.

        >>> index = ServingIndex(None, ["r"])
        >>> index.known["r"] = [Known(1, None, {}, "", ""), Known(2, 100, {}, "", ""),
        ...                     Known(3, 200, {}, "", "")]
        >>> index.serving("r", np.array([99, 100, 250])).tolist()
        [-1, 2, 3]
        """
        eligible = sorted(
            (k.watermark, k.version) for k in self.known[run] if k.watermark is not None
        )
        if not eligible:
            return np.full(len(ts), -1, dtype=np.int64)
        marks = np.array([watermark for watermark, _ in eligible], dtype=np.int64)
        newest = np.maximum.accumulate(np.array([v for _, v in eligible], dtype=np.int64))
        taken = np.searchsorted(marks, ts, side="right")  # how many have watermark <= ts
        return np.where(taken > 0, newest[np.maximum(taken - 1, 0)], -1)


class ModelCache:
    """Loaded snapshots by (run, version), the few most recent kept in memory (their models
    on `device`), and one memoising featurizer per featurizer config (the ids of a value
    never change).

    links: a run's registered snapshots by version (`ServingIndex.links`), to load a delta
    snapshot through its chain; None: only full snapshots load.
    """

    def __init__(
        self,
        size: int = 4,
        links: Callable[[str], Mapping[int, Link]] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.size = size
        self.links = links
        self.device = torch.device(device)
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._featurizers: dict[FeaturizerConfig, MemoFeaturizer] = {}
        # Resolved states, so that the next version applies one delta, not its whole chain.
        self._states = StateCache(size)

    def get(self, run: str, snapshot: Known) -> LoadedModel:
        key = (run, snapshot.version)
        if key not in self._models:
            links = {snapshot.version: snapshot.link}
            if self.links is not None:
                links = {**self.links(run), **links}
            state = resolve(links, snapshot.version, read_link, run=run, cache=self._states)
            loaded = restore(state)
            loaded.model.to(self.device)
            self._models[key] = loaded
            if len(self._models) > self.size:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return self._models[key]

    def featurizer(self, loaded: LoadedModel) -> MemoFeaturizer:
        """The featurizer of a loaded snapshot, shared by every snapshot with the same config."""
        if loaded.featurizer is None:
            raise EvaluationError(
                f"snapshot of {loaded.name!r} has no featurizer config; cannot score"
            )
        found = self._featurizers.get(loaded.featurizer)
        if found is None:
            found = self._featurizers[loaded.featurizer] = MemoFeaturizer(loaded.featurizer)
        return found


def tensor_batch(
    loaded: LoadedModel,
    features: Mapping[str, Sequence[str]],
    conv_types: Sequence[str],
    scenarios: Sequence[str],
    featurizer: Featurizer | None = None,
) -> Batch:
    """The model's input for rows, built read-only: unseen domain values become "other" (0).

    featurizer: one built from the snapshot's featurizer config (None: a fresh one).
    """
    if loaded.featurizer is None:
        raise EvaluationError(f"snapshot of {loaded.name!r} has no featurizer config; cannot score")
    featurizer = featurizer or Featurizer(loaded.featurizer)
    return ids_batch(
        loaded, featurizer.columns(features, n_rows=len(conv_types)), conv_types, scenarios
    )


def ids_batch(
    loaded: LoadedModel, ids: np.ndarray, conv_types: Sequence[str], scenarios: Sequence[str]
) -> Batch:
    """The model's input for rows whose features are hashed already (ids: (B, F))."""
    types = loaded.vocabs["conv_type"].indices(conv_types)
    scens = loaded.vocabs["scenario"].indices(scenarios)
    return Batch.of(torch.from_numpy(ids), torch.from_numpy(types), torch.from_numpy(scens))


def predict(loaded: LoadedModel, batch: Batch) -> np.ndarray:
    """The score of every row as the snapshot's run was trained for (`model.scoring`: p_cvr
    for a click-only run, p_ctr * p_cvr otherwise), clipped.

    Clipped into [EPS, 1 - EPS] here, so that a stored prediction is exactly what every
    figure is computed from (a log loss of 0 or 1 would be infinite).
    """
    device = next(loaded.model.parameters()).device  # where ModelCache put it
    with torch.no_grad():
        p = probability(loaded.model(batch.to(device)), loaded.score)
    out = np.clip(p.cpu().numpy().astype(np.float64), EPS, 1 - EPS)
    if not np.all(np.isfinite(out)):
        raise EvaluationError(f"model {loaded.name!r} predicted a non-finite value")
    return out


def predict_rows(models: ModelCache, run: str, known: Known, rows: Sequence[Row]) -> np.ndarray:
    """The predictions of a run's serving snapshot for rows, SCORE_CHUNK at a time."""
    loaded = models.get(run, known)
    featurizer = models.featurizer(loaded)
    out = []
    for start in range(0, len(rows), SCORE_CHUNK):
        chunk = rows[start : start + SCORE_CHUNK]
        batch = ids_batch(
            loaded,
            featurizer.row_ids(chunk),
            [r.conv_type for r in chunk],
            [r.scenario for r in chunk],
        )
        out.append(predict(loaded, batch))
    return np.concatenate(out)
