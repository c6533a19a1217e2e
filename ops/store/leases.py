"""One writer per run, whatever its snapshot folder: a lease row in the registry database.

A trainer takes the run's lease (`run_leases`: owner, host, pid, acquired_at,
heartbeat_at) before it touches the run's snapshots, renews it while it trains and
deletes it on a clean stop. Each change is one conditional statement in its own
transaction, so two trainers racing for a run get one lease between them on SQLite and on
PostgreSQL alike:

- take: INSERT the row; the primary key refuses a second one (the run is held), unless
  the holder's heartbeat is older than the timeout, in which case an UPDATE conditioned
  on that same old heartbeat takes it over (one of several racing takers wins);
- renew: UPDATE the heartbeat WHERE the owner is still us (no row: the lease was lost);
- release: DELETE WHERE the owner is still us.

Times are the trainers' UTC wall clocks: hosts sharing a registry need clocks that agree
to well within the timeout.

>>> from ops.store.database import open_registry
>>> Session = open_registry("sqlite://")
>>> lease = take_lease(Session, "mmn-a", timeout_s=60)
>>> take_lease(Session, "mmn-a", timeout_s=60)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ops.errors.LeaseError: run 'mmn-a' is being trained by pid ... on ... since ...
>>> lease.release()
>>> take_lease(Session, "mmn-a", timeout_s=60).run
'mmn-a'
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, true, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import LeaseError, RegistryError
from ops.store.database import RunLease

log = logging.getLogger("ops.store.leases")


def _utc(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back: every time in the table is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Holder:
    """Who holds a run's lease, as its row says."""

    owner: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return (
            f"pid {self.pid} on {self.host} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(last heartbeat {self.heartbeat_at:%H:%M:%S} UTC)"
        )


def holder(Session: sessionmaker[Session], run: str) -> Holder | None:
    """The run's lease holder, or None when nobody holds it."""
    with Session() as session:
        row = session.get(RunLease, run)
        if row is None:
            return None
        return Holder(
            owner=row.owner,
            host=row.host,
            pid=row.pid,
            acquired_at=_utc(row.acquired_at),
            heartbeat_at=_utc(row.heartbeat_at),
        )


class Lease:
    """A held lease on one run: `renew()` keeps it, `check()` says it is still ours,
    `release()` gives it up; `start_renewing()` renews it from a thread of its own."""

    def __init__(
        self, Session: sessionmaker[Session], run: str, owner: str, *, timeout_s: float
    ) -> None:
        self.Session = Session
        self.run = run
        self.owner = owner
        self.timeout_s = timeout_s
        self.lost: str | None = None  # why the lease is no longer ours
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew(self) -> None:
        """Move the heartbeat to now; a lease taken over meanwhile is lost for good."""
        try:
            with self.Session.begin() as session:
                done = session.execute(
                    update(RunLease)
                    .where(RunLease.run == self.run, RunLease.owner == self.owner)
                    .values(heartbeat_at=datetime.now(UTC))
                )
        except SQLAlchemyError as exc:
            log.warning("cannot renew the lease of run %s: %r", self.run, exc)
            return  # the next renewal tries again; the timeout bounds how long this may last
        if done.rowcount == 0 and self.lost is None:  # type: ignore[attr-defined]
            self.lost = f"the lease of run {self.run!r} was taken over by another trainer"
            log.error("%s", self.lost)

    def check(self) -> None:
        """Raise LeaseError once the lease is no longer ours (before writing the run)."""
        if self.lost is not None:
            raise LeaseError(f"{self.lost}; this trainer stops without publishing")

    def start_renewing(self) -> Lease:
        """Renew every third of the timeout from a daemon thread, until release()."""

        def loop() -> None:
            while not self._stop.wait(self.timeout_s / 3):
                self.renew()

        self._thread = threading.Thread(target=loop, name=f"lease-{self.run}", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop renewing and delete the row, if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            with self.Session.begin() as session:
                session.execute(
                    delete(RunLease).where(RunLease.run == self.run, RunLease.owner == self.owner)
                )
        except SQLAlchemyError as exc:
            log.warning("cannot release the lease of run %s: %r", self.run, exc)


def take_lease(
    Session: sessionmaker[Session], run: str, *, timeout_s: float, owner: str | None = None
) -> Lease:
    """The run's lease for this process, or LeaseError naming the live holder.

    A holder whose heartbeat is older than timeout_s is taken over, and that is logged.
    """
    owner = owner or uuid.uuid4().hex
    now = datetime.now(UTC)
    row: dict[str, str | int] = {
        "run": run,
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    try:
        with Session.begin() as session:
            session.execute(insert(RunLease).values(**row, acquired_at=now, heartbeat_at=now))
        return Lease(Session, run, owner, timeout_s=timeout_s)
    except IntegrityError:
        pass  # held: by a live trainer, or by one that stopped heartbeating
    except SQLAlchemyError as exc:
        raise RegistryError(f"cannot take the lease of run {run!r}: {exc}") from exc
    return _take_over(Session, run, row, now=now, timeout_s=timeout_s)


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _take_over(
    Session: sessionmaker[Session],
    run: str,
    row: dict[str, str | int],
    *,
    now: datetime,
    timeout_s: float,
) -> Lease:
    with Session.begin() as session:
        current = session.scalars(select(RunLease).where(RunLease.run == run)).one_or_none()
        if current is None:  # released in between: take it as new
            session.add(RunLease(**row, acquired_at=now, heartbeat_at=now))
            return Lease(Session, run, str(row["owner"]), timeout_s=timeout_s)
        stale = Holder(
            owner=current.owner,
            host=current.host,
            pid=current.pid,
            acquired_at=_utc(current.acquired_at),
            heartbeat_at=_utc(current.heartbeat_at),
        )
        silent_s = (now - stale.heartbeat_at).total_seconds()
        # A holder on this host whose process is gone (a SIGKILLed trainer) is stale at once:
        # a restart need not wait out the timeout.
        gone = stale.host == row["host"] and not _alive(stale.pid)
        if silent_s <= timeout_s and not gone:
            raise LeaseError(
                f"run {run!r} is being trained by {stale.describe()}; stop that trainer, choose "
                f"another --run, or wait {timeout_s:g}s after it stops heartbeating"
            )
        taken = session.execute(
            update(RunLease)
            .where(RunLease.run == run, RunLease.owner == stale.owner)
            .where(  # not back since
                true() if gone else RunLease.heartbeat_at < now - timedelta(seconds=timeout_s)
            )
            .values(**row, acquired_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseError(
                f"run {run!r}: its stale lease ({stale.describe()}) was taken over by another "
                "trainer, or renewed, while this one tried"
            )
    log.warning(
        "lease of run %s taken over from %s: %s",
        run,
        stale.describe(),
        "its process is gone"
        if gone
        else f"silent for {silent_s:.0f}s, past the {timeout_s:g}s timeout",
    )
    return Lease(Session, run, str(row["owner"]), timeout_s=timeout_s)
