"""The snapshot store: crash-safe snapshot files of a run, each recorded in the registry.

A snapshot is one file holding everything a run needs to resume or to serve: the model's
weights, config and vocabularies, the optimizer state, the event-time watermark, the
number of examples seen and the consumer offsets (the payload is a plain dict of tensors
and plain data, written with `torch.save` and read back with `weights_only=True`).

Publishing order, so that a crash at any point leaves a consistent state:

1. the bytes go to a temporary file in the run's folder, which is fsynced,
2. renamed to `v{version:06d}.pt`, and the folder fsynced (the file now survives a crash)
   (1 and 2 are `model.snapshot.write_atomically`),
3. one transaction inserts the registry row with the file's sha256 and points the run's
   `latest_snapshot_id` at it.

A crash before 3 leaves a file without a row; a crash before 2 a temporary file.
`reconcile()` (run at every start) deletes both: the snapshot was never published, and the
trainer redoes that work from the previous snapshot's offsets. A row whose file has
disappeared (deleted by hand, a lost disk) is deleted too, and the run's latest pointer
moves back to the newest remaining snapshot: the registry only ever lists files that exist.

Loading verifies the sha256 the registry recorded. A file that does not verify is refused
with `SnapshotCorruptError`; `load_latest()` then quarantines it (renamed to
`*.corrupt`, its row deleted, so nobody else is served it) and falls back to the previous
snapshot. Quarantined files are kept for inspection and ignored by `reconcile()`.

One trainer writes a run at a time: the store holds an exclusive lock on the run's folder
(released by the OS if the process dies), so a second trainer on the same run is refused
instead of deleting the first one's temporary files.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from model.snapshot import encode_state, write_atomically
from ops.errors import SnapshotCorruptError, SnapshotStoreError
from ops.store.database import (
    Run,
    Snapshot,
    add_snapshot,
    ensure_run,
    latest_snapshot,
    next_version,
    remove_snapshot,
)

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".pt"
CORRUPT_SUFFIX = ".corrupt"


@dataclass(frozen=True, kw_only=True)
class SnapshotStoreConfig:
    """Where snapshot files live.

    directory: root folder; each run writes into `directory/<run name>/`.
    """

    directory: Path = Path("runs/snapshots")


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
        )


@dataclass(frozen=True, kw_only=True)
class Reconciliation:
    """What `reconcile()` removed: rows without a file, and files without a row."""

    rows_removed: tuple[int, ...] = ()
    files_removed: tuple[str, ...] = ()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_snapshot(path: str | Path, sha256: str) -> dict[str, Any]:
    """Read a snapshot file, verify it against the recorded sha256 and decode its payload."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotStoreError(f"cannot read snapshot {path}: {exc}") from exc
    actual = sha256_of(data)
    if actual != sha256:
        raise SnapshotCorruptError(
            f"snapshot {path} is corrupt: its sha256 is {actual}, the registry recorded {sha256}; "
            "it is not loaded (the previous snapshot is used instead)"
        )
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # torch raises many types for undecodable bytes
        raise SnapshotCorruptError(
            f"snapshot {path} verifies but cannot be decoded: {exc}"
        ) from exc


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
    ) -> None:
        self.config = config
        self.Session = Session
        self.run = run
        self.folder = (config.directory / run).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / ".lock", "w")  # noqa: SIM115 (held for the store's life)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SnapshotStoreError(
                f"run {run!r} is being written by another trainer (lock {self.folder / '.lock'}); "
                "stop it first or choose another --run name"
            ) from None
        with self._transaction() as session:
            ensure_run(session, name=run, model=model, config=run_config)

    def close(self) -> None:
        """Release the run's lock."""
        self._lock.close()

    def _transaction(self):
        try:
            return self.Session.begin()
        except SQLAlchemyError as exc:
            raise SnapshotStoreError(f"cannot open a registry transaction: {exc}") from exc

    def _run(self, session: Session) -> Run:
        return session.scalars(select(Run).where(Run.name == self.run)).one()

    def _rows(self, session: Session) -> list[Snapshot]:
        run = self._run(session)
        return list(
            session.scalars(
                select(Snapshot).where(Snapshot.run_id == run.id).order_by(Snapshot.version)
            )
        )

    def reconcile(self) -> Reconciliation:
        """Make files and rows agree: delete rows without a file, and unregistered or temporary files."""
        with self._transaction() as session:
            rows = self._rows(session)
            missing = [row for row in rows if not Path(row.path).is_file()]
            for row in missing:
                log.warning(
                    "snapshot row without a file removed run=%s version=%d path=%s",
                    self.run,
                    row.version,
                    row.path,
                )
                remove_snapshot(session, row)
            registered = {str(Path(row.path).resolve()) for row in rows if row not in missing}
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
    ) -> PublishedSnapshot:
        """Write payload as the run's next snapshot, then register it as the latest."""
        data = encode_state(payload)
        digest = sha256_of(data)
        with self.Session() as session:
            version = max(next_version(session, self._run(session)), self._next_file_version())
        path = self.folder / f"v{version:06d}{SNAPSHOT_SUFFIX}"
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise SnapshotStoreError(f"cannot write snapshot {path}: {exc}") from exc
        try:
            with self._transaction() as session:
                row = add_snapshot(
                    session,
                    self._run(session),
                    path=str(path),
                    sha256=digest,
                    examples_seen=examples_seen,
                    watermark=watermark,
                    offsets=offsets,
                    version=version,
                )
                published = PublishedSnapshot.of(self.run, row)
        except SQLAlchemyError as exc:
            path.unlink(missing_ok=True)
            raise SnapshotStoreError(f"cannot register snapshot {path}: {exc}") from exc
        log.info(
            "snapshot published run=%s version=%d examples_seen=%d watermark=%s sha256=%s",
            self.run,
            version,
            examples_seen,
            watermark,
            digest[:12],
        )
        return published

    def _next_file_version(self) -> int:
        # Quarantined files keep their version: a new snapshot never reuses a number.
        versions = [
            int(match.group(1))
            for path in self.folder.iterdir()
            if (match := re.match(r"v(\d+)", path.name))
        ]
        return max(versions, default=0) + 1

    def load_latest(self) -> tuple[PublishedSnapshot, dict[str, Any]] | None:
        """The newest snapshot that verifies and its payload; None when the run has none.

        A corrupt latest snapshot is quarantined and the previous one is tried, and so on.
        """
        while True:
            with self.Session() as session:
                row = latest_snapshot(session, self._run(session))
                if row is None:
                    return None
                published = PublishedSnapshot.of(self.run, row)
            try:
                return published, load_snapshot(published.path, published.sha256)
            except SnapshotCorruptError as exc:
                log.error("%s", exc)
                self._quarantine(published)

    def _quarantine(self, snapshot: PublishedSnapshot) -> None:
        path = Path(snapshot.path)
        if path.exists():
            path.rename(path.with_name(path.name + CORRUPT_SUFFIX))
        with self._transaction() as session:
            row = session.scalars(
                select(Snapshot).where(
                    Snapshot.run_id == self._run(session).id, Snapshot.version == snapshot.version
                )
            ).one()
            remove_snapshot(session, row)
        log.warning(
            "corrupt snapshot quarantined run=%s version=%d file=%s%s",
            self.run,
            snapshot.version,
            path,
            CORRUPT_SUFFIX,
        )
