"""The snapshot store: crash-safe snapshot files of a run, each recorded in the registry.

A published snapshot is two files (plain dicts of tensors and plain data, `torch.save`d,
read back with `weights_only=True`): the serving file `v{version:06d}.pt`, what scoring
needs (the payload without its `checkpoint` part, `model.snapshot.serving_part`), which is
all the evaluator loads, after the first a delta of the previous one while that is cheaper
(`ops.store.snapshot_chain`); and the checkpoint `v{version:06d}.ckpt`, that part (optimizer
state, gathered rows, dedupe keys; all-zero rows left out, `ops.store.zero_rows`) tied to
its serving file by its sha256, kept for the `keep_checkpoints` newest snapshots. A payload
without a checkpoint part, like every snapshot registered before checkpoints were kept
apart, is one complete file.

Publishing order, so that a crash at any point leaves a consistent state:

1. each file's bytes go to a temporary file in the run's folder, which is fsynced,
2. renamed to its name, and the folder fsynced (the file now survives a crash)
   (1 and 2 are `model.snapshot.write_atomically`),
3. one transaction inserts the registry row with both files' sha256 and points the run's
   `latest_snapshot_id` at it.

A crash before 3 leaves files without a row; a crash before 2 a temporary file.
`reconcile()` (run at every start) deletes both: the snapshot was never published, and the
trainer redoes that work from the previous snapshot's offsets. A row whose file has
disappeared (deleted by hand, a lost disk) is deleted too, with every delta snapshot whose
chain it was a link of, and the run's latest pointer moves back to the newest remaining
snapshot: the registry only ever lists snapshots that load.

Loading verifies the sha256 the registry recorded. A file that does not verify is refused
with `SnapshotCorruptError`; `load_latest()` then quarantines the snapshot (its files
renamed to `*.corrupt`, its row deleted, so nobody else is served it) and falls back to
the previous resumable snapshot. Quarantined files are kept for inspection and ignored by
`reconcile()`.

The run's registry row is written with its first snapshot, in the same transaction: a
trainer that fails to start leaves no row. A run that exists was started with a
configuration (`Run.config`); a restart with another one is refused, naming each
difference, unless the caller accepts the new values (`reconfigure`), which are recorded
with the next snapshot.

One trainer writes a run at a time: the store holds an exclusive lock on the run's folder
(released by the OS if the process dies), so a second trainer on the same run is refused
instead of deleting the first one's temporary files.
"""

from __future__ import annotations

import fcntl
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from model.snapshot import CHECKPOINT, encode_state, serving_part
from ops.errors import SnapshotCorruptError, SnapshotStoreError
from ops.store.database import (
    Run,
    Snapshot,
    add_snapshot,
    ensure_run,
    next_version,
    remove_snapshot,
)
from ops.store.deltas import Link
from ops.store.names import check_name
from ops.store.retention import prune, prune_checkpoints
from ops.store.run_options import check_run_options
from ops.store.snapshot_chain import DeltaWriter, Encoded, links_of, load_checkpoint, unloadable
from ops.store.snapshot_config import SnapshotStoreConfig
from ops.store.snapshot_files import sha256_of, write_files
from ops.store.zero_rows import pack

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".pt"
CHECKPOINT_SUFFIX = ".ckpt"
CORRUPT_SUFFIX = ".corrupt"


@dataclass(frozen=True, kw_only=True)
class PublishedSnapshot:
    """What a publish or a load returns: the registry's facts about one snapshot file."""

    run: str
    version: int
    path: str
    sha256: str
    examples_seen: int
    watermark: int | None
    offsets: dict[str, int]
    examples_trained: int | None = None  # None: registered before it was recorded
    checkpoint_path: str | None = None  # None: path holds everything, or it was pruned
    checkpoint_sha256: str | None = None
    parent_version: int | None = None  # None: a full snapshot; else path holds a delta

    @staticmethod
    def of(run: str, row: Snapshot) -> PublishedSnapshot:
        return PublishedSnapshot(
            run=run,
            version=row.version,
            path=row.path,
            sha256=row.sha256,
            examples_seen=row.examples_seen,
            watermark=row.watermark,
            offsets=dict(row.offsets),
            examples_trained=row.examples_trained,
            checkpoint_path=row.checkpoint_path,
            checkpoint_sha256=row.checkpoint_sha256,
            parent_version=row.parent_version,
        )


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """What `reconcile()` removed: rows without a file, and files without a row."""

    rows_removed: tuple[int, ...] = ()
    files_removed: tuple[str, ...] = ()


class SnapshotStore:
    """The snapshots of one run: publish, reconcile, load the latest good one.

    >>> import tempfile, torch
    >>> from ops.store.database import open_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> store = SnapshotStore(SnapshotStoreConfig(directory=root), open_registry("sqlite://"),
    ...                       run="demo", model="mmn", run_config={})
    >>> published = store.publish({"w": torch.ones(2)}, examples_seen=5, watermark=60,
    ...                           offsets={"0": 1})
    >>> published.version, store.load_latest()[1]["w"].tolist()
    (1, [1.0, 1.0])
    >>> store.close()
    """

    def __init__(
        self,
        config: SnapshotStoreConfig,
        Session: sessionmaker[Session],
        *,
        run: str,
        model: str,
        run_config: dict[str, Any],
        reconfigurable: Callable[[str], bool] | None = None,
    ) -> None:
        """Lock the run's folder and check the run's stored model and configuration.

        reconfigurable: which differing config keys (dotted) the caller accepts; None
        accepts none: any difference is refused.
        """
        self.config = config
        self.Session = Session
        self.run = check_name("--run", run)
        self.model = model
        self.run_config = run_config
        self.deltas = DeltaWriter(config.delta_chain_max)
        self.folder = (config.directory / run).resolve()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.folder / ".lock", "w")  # noqa: SIM115 (held for the store's life)
        except OSError as exc:
            raise SnapshotStoreError(
                f"cannot use the snapshot folder {self.folder}: {exc}"
            ) from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SnapshotStoreError(
                f"run {run!r} is being written by another trainer (lock {self.folder / '.lock'}); "
                "stop it first or choose another --run name"
            ) from None
        try:
            self._check_config(reconfigurable)
        except BaseException:
            self._lock.close()
            raise

    def _check_config(self, reconfigurable: Callable[[str], bool] | None) -> None:
        with self.Session() as session:
            row = self._run(session)
            if row is None:
                return
            if row.model != self.model:
                raise SnapshotStoreError(
                    f"run {self.run!r} trains model {row.model!r}, not {self.model!r}; "
                    "choose another --run name for a different model"
                )
            stored = dict(row.config)
        shown = check_run_options(self.run, stored, self.run_config, reconfigurable)
        if shown:
            log.warning("run reconfigured run=%s changes=%s", self.run, shown)

    def close(self) -> None:
        """Release the run's lock."""
        self._lock.close()

    def _transaction(self):
        try:
            return self.Session.begin()
        except SQLAlchemyError as exc:
            raise SnapshotStoreError(f"cannot open a registry transaction: {exc}") from exc

    def _run(self, session: Session) -> Run | None:
        return session.scalars(select(Run).where(Run.name == self.run)).one_or_none()

    def _rows(self, session: Session) -> list[Snapshot]:
        run = self._run(session)
        if run is None:
            return []
        return list(
            session.scalars(
                select(Snapshot).where(Snapshot.run_id == run.id).order_by(Snapshot.version)
            )
        )

    def reconcile(self) -> Reconciliation:
        """Make files and rows agree: delete rows without a file, and unregistered or temporary
        files; a snapshot whose checkpoint vanished serves on, no longer resumable."""
        with self._transaction() as session:
            rows = self._rows(session)
            missing = unloadable(self.run, rows)
            for row in missing:
                remove_snapshot(session, row)
            for row in rows:
                lost = row.checkpoint_path
                if row not in missing and lost is not None and not Path(lost).is_file():
                    log.warning("checkpoint without its file dropped run=%s version=%d path=%s",
                                self.run, row.version, lost)  # fmt: skip
                    row.checkpoint_path = row.checkpoint_sha256 = None
                    row.resumable = False
            registered = {
                str(Path(path).resolve())
                for row in rows
                if row not in missing
                for path in (row.path, row.checkpoint_path)
                if path is not None
            }
        removed_files = []
        for path in sorted(self.folder.iterdir()):
            if path.name == ".lock" or path.name.endswith(CORRUPT_SUFFIX):
                continue
            if str(path.resolve()) not in registered:
                log.warning("unpublished snapshot file removed run=%s path=%s", self.run, path)
                path.unlink()
                removed_files.append(str(path))
        return Reconciliation(
            rows_removed=tuple(row.version for row in missing),
            files_removed=tuple(removed_files),
        )

    def publish(
        self,
        payload: dict[str, Any],
        *,
        examples_seen: int,
        watermark: int | None,
        offsets: dict[str, int],
        metrics: dict[str, Any] | None = None,
        examples_trained: int | None = None,
    ) -> PublishedSnapshot:
        """Write payload as the run's next snapshot (serving file and checkpoint), then
        register it as the latest.

        metrics: the trainer's progressive-validation figures, stored in the registry row.
        """
        serving = serving_part(payload)
        encoded = self.deltas.encode(serving)
        data = encoded.data
        digest = sha256_of(data)
        checkpoint = None
        if CHECKPOINT in payload:
            resume = pack(payload[CHECKPOINT])  # an optimizer's untouched rows are zeros
            checkpoint = encode_state({"serving_sha256": digest, CHECKPOINT: resume})
        version = self._next_version()
        path = self.folder / f"v{version:06d}{SNAPSHOT_SUFFIX}"
        checkpoint_path = self.folder / f"v{version:06d}{CHECKPOINT_SUFFIX}"
        written = write_files({path: data, checkpoint_path: checkpoint})
        facts = dict(examples_seen=examples_seen, watermark=watermark, offsets=offsets,
                     metrics=metrics, examples_trained=examples_trained)  # fmt: skip
        try:
            published = self._register(
                version, path, digest, encoded, (checkpoint_path, checkpoint), facts
            )
        except SQLAlchemyError as exc:
            for file in written:
                file.unlink(missing_ok=True)
            raise SnapshotStoreError(f"cannot register snapshot {path}: {exc}") from exc
        link = Link(version, str(path), digest, encoded.parent_version)
        self.deltas.published(link, serving, encoded)
        if self.config.keep_snapshots is not None:
            prune(self.Session, self.run, self.config.keep_snapshots)
        prune_checkpoints(self.Session, self.run, self.config.keep_checkpoints)
        log.info("snapshot published run=%s version=%d examples_seen=%d watermark=%s sha256=%s "
                 "bytes=%d delta_of=%s", self.run, version, examples_seen, watermark, digest[:12],
                 len(data), encoded.parent_version)  # fmt: skip
        return published

    def _register(
        self,
        version: int,
        path: Path,
        digest: str,
        encoded: Encoded,
        checkpoint: tuple[Path, bytes | None],
        facts: dict[str, Any],
    ) -> PublishedSnapshot:
        """One transaction: the snapshot's row, made the run's latest."""
        checkpoint_path, data = checkpoint
        with self._transaction() as session:
            # The run's row comes with its first snapshot, and takes accepted new options.
            run = ensure_run(session, name=self.run, model=self.model, config=self.run_config)
            run.config = self.run_config
            row = add_snapshot(
                session,
                run,
                path=str(path),
                sha256=digest,
                version=version,
                checkpoint_path=None if data is None else str(checkpoint_path),
                checkpoint_sha256=None if data is None else sha256_of(data),
                parent_version=encoded.parent_version,
                base_version=encoded.base_version,
                **facts,
            )
            return PublishedSnapshot.of(self.run, row)

    def _next_version(self) -> int:
        with self.Session() as session:
            run = self._run(session)
            first = 1 if run is None else next_version(session, run)
        return max(first, self._next_file_version())

    def _next_file_version(self) -> int:
        # Quarantined files keep their version: a new snapshot never reuses a number.
        versions = [
            int(match.group(1))
            for path in self.folder.iterdir()
            if (match := re.match(r"v(\d+)", path.name))
        ]
        return max(versions, default=0) + 1

    def load_latest(self) -> tuple[PublishedSnapshot, dict[str, Any]] | None:
        """The newest resumable snapshot that verifies and its whole payload (serving file
        and checkpoint); None when the run has none.

        A corrupt one is quarantined and the previous one is tried, and so on.
        """
        while True:
            with self.Session() as session:
                run = self._run(session)
                row = None
                if run is not None:
                    row = session.scalars(
                        select(Snapshot)
                        .where(Snapshot.run_id == run.id, Snapshot.resumable.is_(True))
                        .order_by(Snapshot.version.desc())
                        .limit(1)
                    ).one_or_none()
                if row is None:
                    return None
                published = PublishedSnapshot.of(self.run, row)
            try:
                payload = load_checkpoint(self.Session, published)
            except SnapshotCorruptError as exc:
                log.error("%s", exc)
                self._quarantine(published)
                continue
            with self.Session() as session:
                links = links_of(session, self.run)
            self.deltas.resumed(links, published.version, serving_part(payload))
            return published, payload

    def _quarantine(self, snapshot: PublishedSnapshot) -> None:
        path = Path(snapshot.path)
        for file in (path, snapshot.checkpoint_path):
            if file is not None and Path(file).exists():
                Path(file).rename(Path(file).with_name(Path(file).name + CORRUPT_SUFFIX))
        with self._transaction() as session:
            row = session.scalars(
                select(Snapshot)
                .join(Run, Run.id == Snapshot.run_id)
                .where(Run.name == self.run, Snapshot.version == snapshot.version)
            ).one()
            remove_snapshot(session, row)
        log.warning(
            "corrupt snapshot quarantined run=%s version=%d file=%s%s",
            self.run,
            snapshot.version,
            path,
            CORRUPT_SUFFIX,
        )
