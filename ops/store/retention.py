"""Snapshot retention: which snapshots of a run may go, and removing file and row together.

Kept whatever `keep` says: the run's latest snapshot, its `keep` newest, every snapshot a
registered experiment's window is served by (`serving_ids`): the versions that served its
stored predictions (recorded as they are written, `experiment_served_versions`: no scan of
the predictions), and, while the experiment is unfinished, those that can still serve a
click at or after its evaluator's low-water mark (the oldest impression time it may still
score; every snapshot of its runs before it records one); and every link of the delta
chains of those kept (`with_links`): a kept snapshot always loads.

Removal is one transaction per prune: each doomed file is first renamed aside
(`*.pruned`), then its row deleted; only once the transaction commits are the set-aside
files unlinked. A failure before the commit renames them back, so a row never loses its
file; a crash after it leaves `*.pruned` files, which `SnapshotStore.reconcile()` deletes
(they belong to no row). A pruned snapshot's checkpoint goes with it; `prune_checkpoints`
removes the checkpoints of older snapshots that stay (they serve on, no longer resumable).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import ConfigError, RegistryError
from ops.store.database import Run, Snapshot, get_run
from ops.store.experiments import Experiment, served_versions

log = logging.getLogger(__name__)

PRUNED_SUFFIX = ".pruned"


@dataclass(frozen=True, kw_only=True)
class Pruned:
    """What a prune removed (versions and files) and why it kept the rest."""

    versions: tuple[int, ...]
    files: tuple[str, ...]
    kept: int
    serving: int


def serving_ids(session: Session, run: Run) -> set[int]:
    """Ids of the run's snapshots that an experiment's windows are served by: those that
    served its stored predictions, and, while it runs, those that can serve a click at or
    after its evaluator's low-water mark (all of them before it records one)."""
    if not inspect(session.get_bind()).has_table("experiments"):
        return set()
    rows = session.scalars(
        select(Snapshot).where(Snapshot.run_id == run.id).order_by(Snapshot.version)
    ).all()
    by_version = {row.version: row.id for row in rows}
    protected: set[int] = set()
    for experiment in session.scalars(select(Experiment)):
        arms = [arm for arm, name in (experiment.config.get("arms") or {}).items()
                if name == run.name]  # fmt: skip
        if not arms:
            continue
        used = served_versions(session, experiment.id, arms)
        protected |= {by_version[v] for v in used if v in by_version}
        if not experiment.finished:
            protected |= {row.id for row in _from_low_water(rows, experiment.low_water)}
    return protected


def _from_low_water(rows: Sequence[Snapshot], low_water: int | None) -> Sequence[Snapshot]:
    """The rows (in version order) that can serve an impression at or after low_water: the
    newest whose watermark is <= it and every later one (all of them for None)."""
    if low_water is None:
        return rows
    serving = [
        i for i, row in enumerate(rows) if row.watermark is not None and row.watermark <= low_water
    ]
    return rows[serving[-1] :] if serving else rows


def with_links(rows: Sequence[Snapshot], ids: set[int]) -> set[int]:
    """ids and the ids of every snapshot a delta chain of theirs goes through."""
    by_version = {row.version: row for row in rows}
    out = set(ids)
    for row in rows:
        if row.id not in ids:
            continue
        parent = by_version.get(row.parent_version) if row.parent_version is not None else None
        while parent is not None and parent.id not in out:
            out.add(parent.id)
            step = parent.parent_version
            parent = by_version.get(step) if step is not None else None
    return out


def prune(
    Session: sessionmaker[Session],
    run_name: str,
    keep: int,
    *,
    also_keep: frozenset[int] = frozenset(),
) -> Pruned:
    """Delete the run's snapshots beyond the `keep` newest, never one that must stay.

    also_keep: versions the caller still needs (a snapshot it is about to serve).
    """
    if keep < 1:
        raise ConfigError(f"--keep-snapshots must be at least 1, got {keep}")
    moved: list[tuple[Path, Path]] = []
    try:
        with Session.begin() as session:
            run = get_run(session, run_name)
            rows = list(
                session.scalars(
                    select(Snapshot)
                    .where(Snapshot.run_id == run.id)
                    .order_by(Snapshot.version.desc())
                )
            )
            serving = serving_ids(session, run) | {r.id for r in rows if r.version in also_keep}
            latest = {r.id for r in rows if r.id == run.latest_snapshot_id}
            keep_ids = with_links(rows, {r.id for r in rows[:keep]} | serving | latest)
            doomed = [r for r in rows if r.id not in keep_ids]
            for row in doomed:
                for file in (row.path, row.checkpoint_path):
                    if file is not None:
                        _set_aside(Path(file), moved)
                session.delete(row)
            session.flush()
            versions = tuple(sorted(r.version for r in doomed))
            result = Pruned(
                versions=versions,
                files=tuple(str(p) for p, _ in moved),
                kept=len(rows) - len(doomed),
                serving=len(serving - {r.id for r in rows[:keep]}),
            )
    except BaseException as exc:
        for path, aside in moved:
            os.replace(aside, path)
        if isinstance(exc, OSError):
            raise RegistryError(
                f"cannot prune run {run_name!r}: {exc}; nothing was removed"
            ) from exc
        raise
    for _, aside in moved:
        aside.unlink(missing_ok=True)
    if versions:
        log.info(
            "snapshots pruned run=%s versions=%s kept=%d", run_name, list(versions), result.kept
        )
    return result


def prune_checkpoints(Session: sessionmaker[Session], run_name: str, keep: int) -> tuple[int, ...]:
    """Delete the run's resume checkpoints beyond those of its `keep` newest snapshots; the
    snapshots themselves serve on, no longer resumable. Returns the versions it pruned.

    Crash-safe like `prune`: files set aside, rows updated in one transaction, then unlinked.
    """
    if keep < 1:
        raise ConfigError(f"--keep-checkpoints must be at least 1, got {keep}")
    moved: list[tuple[Path, Path]] = []
    try:
        with Session.begin() as session:
            run = get_run(session, run_name)
            rows = session.scalars(
                select(Snapshot)
                .where(Snapshot.run_id == run.id, Snapshot.checkpoint_path.is_not(None))
                .order_by(Snapshot.version.desc())
            ).all()
            for row in rows[keep:]:
                assert row.checkpoint_path is not None
                _set_aside(Path(row.checkpoint_path), moved)
                row.checkpoint_path = row.checkpoint_sha256 = None
                row.resumable = False
            versions = tuple(sorted(row.version for row in rows[keep:]))
    except BaseException as exc:
        for path, aside in moved:
            os.replace(aside, path)
        if isinstance(exc, OSError):
            raise RegistryError(
                f"cannot prune checkpoints of run {run_name!r}: {exc}; nothing was removed"
            ) from exc
        raise
    for _, aside in moved:
        aside.unlink(missing_ok=True)
    return versions


def _set_aside(path: Path, moved: list[tuple[Path, Path]]) -> None:
    """Rename path to `*.pruned` (recorded in moved, to undo or unlink later), if it exists."""
    if path.exists():
        aside = path.with_name(path.name + PRUNED_SUFFIX)
        os.replace(path, aside)
        moved.append((path, aside))
