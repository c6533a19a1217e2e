"""Snapshot retention: which snapshots of a run may go, and removing file and row together.

Kept whatever `keep` says: the run's latest snapshot, its `keep` newest, and every snapshot
a registered experiment's window is served by (`serving_ids`): the versions its stored
predictions name, and, while the experiment is unfinished, every snapshot of its runs (its
evaluator may still score a held click with any of them); prune again once it finishes.

Removal is one transaction per prune: each doomed file is first renamed aside
(`*.pruned`), then its row deleted; only once the transaction commits are the set-aside
files unlinked. A failure before the commit renames them back, so a row never loses its
file; a crash after it leaves `*.pruned` files, which `SnapshotStore.reconcile()` deletes
(they belong to no row). A pruned snapshot's checkpoint goes with it; `prune_checkpoints`
removes the checkpoints of older snapshots that stay (they serve on, no longer resumable).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import ConfigError, RegistryError
from ops.store.database import Run, Snapshot, get_run

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
    """Ids of the run's snapshots that serve a registered experiment's windows."""
    bind = session.get_bind()
    if not inspect(bind).has_table("experiments"):
        return set()
    protected: set[int] = set()
    experiments = session.execute(text("SELECT id, config, finished FROM experiments")).all()
    rows = session.scalars(
        select(Snapshot).where(Snapshot.run_id == run.id).order_by(Snapshot.version)
    ).all()
    by_version = {row.version: row.id for row in rows}
    for exp_id, config, finished in experiments:
        config = config if isinstance(config, dict) else _json(config)
        arms = [arm for arm, name in (config.get("arms") or {}).items() if name == run.name]
        if not arms:
            continue
        for arm in arms:
            used = session.execute(
                text(
                    "SELECT DISTINCT snapshot_version FROM experiment_predictions "
                    "WHERE experiment_id = :e AND arm = :a AND snapshot_version IS NOT NULL"
                ),
                {"e": exp_id, "a": arm},
            ).scalars()
            protected |= {by_version[v] for v in used if v in by_version}
        if not finished:
            # A running evaluator holds clicks until their labels are final and their serving
            # snapshots are determined, and may be far behind what it has read: any snapshot
            # of the run may still serve one of them, so none goes while it runs.
            protected |= {r.id for r in rows}
    return protected


def _json(value: object) -> dict:
    return json.loads(value) if isinstance(value, str | bytes) else {}


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
            keep_ids = {r.id for r in rows[:keep]} | serving | {run.latest_snapshot_id}
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
