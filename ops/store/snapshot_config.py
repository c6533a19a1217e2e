"""Where a run's snapshot files live and how many are kept (`ops.store.snapshots`).

Apart from the store so that it imports without torch: `mmn train --help` and `mmn runs`
derive options and defaults from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ops.errors import SnapshotStoreError


@dataclass(frozen=True, kw_only=True)
class SnapshotStoreConfig:
    """Where snapshot files live.

    Attributes:
        directory: root folder; each run writes into `directory/<run name>/`.
        keep_snapshots: snapshots kept per run after each publish, the newest (None: all); the
            latest and those serving a registered experiment are kept beyond it.
        keep_checkpoints: resume checkpoints kept per run, those of the newest snapshots (the
            latest's is always among them; a snapshot whose checkpoint went serves on).
        delta_chain_max: delta snapshots at most between two full ones (0: every one full); a delta
            holds only what changed since the previous snapshot (embedding rows touched, tensors
            updated), and a full one comes sooner when its chain would cost more.
    """

    directory: Path = Path("runs/snapshots")
    # 3 x ~58 MB serving files (the demo's MMN) + 2 checkpoints of its Adagrad state: 300 MB.
    keep_snapshots: int | None = 3
    keep_checkpoints: int = 2
    # Loading a version reads its base and at most this many deltas, which together weigh
    # less than a full file.
    delta_chain_max: int = 32

    def __post_init__(self) -> None:
        if self.keep_snapshots is not None and self.keep_snapshots < 1:
            raise SnapshotStoreError(
                f"SnapshotStoreConfig.keep_snapshots must be at least 1, got {self.keep_snapshots}"
            )
        if self.delta_chain_max < 0:
            raise SnapshotStoreError(
                f"SnapshotStoreConfig.delta_chain_max must be at least 0, got {self.delta_chain_max}"
            )
        if self.keep_checkpoints < 1:
            raise SnapshotStoreError(
                "SnapshotStoreConfig.keep_checkpoints must be at least 1 (a run resumes from "
                f"its latest checkpoint), got {self.keep_checkpoints}"
            )
