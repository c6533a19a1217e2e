"""The run and snapshot registry: which runs exist and which snapshots each has published.

SQLAlchemy 2.0 models over one database (a SQLite file by default, PostgreSQL by URL);
the schema is created and upgraded by the Alembic migrations in `ops/store/migrations`, applied
by `open_registry` at start. One sessionmaker per process; the caller owns each
transaction (`with Session.begin() as session:`), so a snapshot row and the run's
`latest_snapshot_id` pointer change together or not at all.

>>> Session = open_registry("sqlite://")
>>> with Session.begin() as session:
...     run = ensure_run(session, name="mmn-a", model="mmn", config={"lr": 0.01})
...     snap = add_snapshot(session, run, path="/s/v1.pt", sha256="0" * 64,
...                         examples_seen=10, watermark=1000, offsets={"0": 3})
...     (snap.version, run.latest_snapshot_id == snap.id)
(1, True)
>>> with Session() as session:
...     [s.examples_seen for s in list_snapshots(session, "mmn-a")]
[10]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    inspect,
    select,
    true,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from ops.errors import RegistryError
from ops.store.defaults import DEFAULT_URL

__all__ = ["DEFAULT_URL"]  # re-exported: the registry's URL unless one is given
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the registry tables."""


Named = TypeVar("Named", bound=Base)  # a registry row with a unique name


class Run(Base):
    """A named training run: one model learning from the stream under one configuration."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    latest_snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", use_alter=True, name="fk_runs_latest_snapshot"),
        default=None,
    )


class RunLease(Base):
    """The one trainer allowed to write a run: who holds it and when it last said so."""

    __tablename__ = "run_leases"

    run: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Snapshot(Base):
    """A published snapshot file of a run: where it is, its checksum and what it has seen.

    watermark: event time (seconds of the log) the snapshot has trained up to.
    offsets: the next `minibatches` offset to read per partition, {"partition": offset}.
    metrics: the trainer's progressive-validation figures when it was taken (None: none kept).
    path is the serving file (what scoring needs); checkpoint_path the resume checkpoint
    beside it (optimizer state, gathered rows, dedupe keys), None when the serving file holds
    everything or once the checkpoint is pruned; resumable: a trainer can resume from it.
    """

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("run_id", "version", name="uq_snapshots_run_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    examples_seen: Mapped[int] = mapped_column(BigInteger)
    # Examples the model took optimizer steps on (examples_seen also counts rows gathered
    # for the next step); None for snapshots registered before it was recorded.
    examples_trained: Mapped[int | None] = mapped_column(BigInteger, default=None)
    watermark: Mapped[int | None] = mapped_column(BigInteger)
    offsets: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    checkpoint_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    resumable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A delta snapshot's file holds only what changed since its parent (`ops.store.deltas`);
    # base_version is its chain's full snapshot. Both None: a full snapshot.
    parent_version: Mapped[int | None] = mapped_column(Integer, default=None)
    base_version: Mapped[int | None] = mapped_column(Integer, default=None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form `mmn snapshots list --json` prints."""
        return {
            "version": self.version,
            "path": self.path,
            "sha256": self.sha256,
            "examples_seen": self.examples_seen,
            "examples_trained": self.examples_trained,
            "watermark": self.watermark,
            "offsets": self.offsets,
            "created_at": self.created_at.isoformat(),
            "metrics": self.metrics,
            "checkpoint_path": self.checkpoint_path,
            "resumable": self.resumable,
            "parent_version": self.parent_version,
            "base_version": self.base_version,
        }


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    database = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(database) if database and database != ":memory:" else None


def make_engine(
    url: str = DEFAULT_URL, *, schema: str | None = None, create: bool = True
) -> Engine:
    """An engine for url; `schema` sets PostgreSQL's search_path.

    create: a SQLite file's folder is created; with False, a missing file is a RegistryError
    (read-only commands never create a database: a mistyped path must not look empty).
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is not None and not create and not database.is_file():
            raise RegistryError(
                f"no registry at {url}: {database} does not exist (a mistyped --db, or nothing "
                "trained with it yet)"
            )
        if database is not None:
            try:
                database.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(f"cannot create the folder of {url}: {exc}") from exc
        else:
            # One shared connection, so an in-memory database outlives a session.
            kwargs["poolclass"] = StaticPool
        # Several trainers may share one file: wait for a writer instead of failing at once.
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif schema is not None:
        kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise RegistryError(
            f"cannot use registry URL {url!r}: {exc}; give e.g. sqlite:///runs/registry.db "
            "or postgresql+psycopg://USER@HOST:5432/DB"
        ) from exc
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_foreign_keys)
    return engine


def _sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Apply the Alembic migrations up to head on engine's database."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise RegistryError(
            f"cannot migrate the registry at {engine.url.render_as_string(hide_password=True)}: {exc}"
        ) from exc


def open_registry(
    url: str = DEFAULT_URL, *, schema: str | None = None, create: bool = True
) -> sessionmaker[Session]:
    """Migrate the database at url to head and return the process's one sessionmaker.

    create: False for read-only commands: a database without the registry's tables is a
    RegistryError instead of an empty registry created on the spot.
    """
    engine = make_engine(url, schema=schema, create=create)
    if not create:
        try:
            tables = set(inspect(engine).get_table_names())
        except SQLAlchemyError as exc:
            raise RegistryError(f"cannot open the registry at {url}: {exc}") from exc
        if "runs" not in tables:
            raise RegistryError(f"no registry at {url}: the database has no runs table")
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def registry_exists(url: str, *, schema: str | None = None) -> bool:
    """Whether the database at url holds a registry already (its runs table); opens nothing new."""
    database = sqlite_file(url)
    if url.startswith("sqlite") and (database is None or not database.is_file()):
        return False
    engine = make_engine(url, schema=schema, create=False)
    try:
        return "runs" in inspect(engine).get_table_names()
    except SQLAlchemyError as exc:
        raise RegistryError(f"cannot open the registry at {url}: {exc}") from exc
    finally:
        engine.dispose()


def ensure_named(
    session: Session,
    cls: type[Named],
    name: str,
    *,
    create: Callable[[], Named],
    refuse: Callable[[Named], str | None],
) -> Named:
    """The row of cls called name: create() if there is none, else the existing one unless
    refuse(row) names why it cannot be reused (raised as a RegistryError)."""
    found = session.scalars(select(cls).filter_by(name=name)).one_or_none()
    if found is None:
        found = create()
        session.add(found)
        session.flush()
    elif (why := refuse(found)) is not None:
        raise RegistryError(why)
    return found


def ensure_run(session: Session, *, name: str, model: str, config: dict[str, Any]) -> Run:
    """The run called name, created if new; an existing run must train the same model."""
    return ensure_named(
        session,
        Run,
        name,
        create=lambda: Run(name=name, model=model, config=config, created_at=_now()),
        refuse=lambda run: (
            None
            if run.model == model
            else f"run {name!r} trains model {run.model!r}, not {model!r}; "
            "choose another --run name for a different model"
        ),
    )


def get_run(session: Session, name: str) -> Run:
    """The run called name; an unknown name lists the known ones."""
    run = session.scalars(select(Run).where(Run.name == name)).one_or_none()
    if run is None:
        known = ", ".join(r.name for r in list_runs(session)) or "none yet"
        raise RegistryError(f"unknown run {name!r}; known runs: {known}")
    return run


def list_runs(session: Session) -> list[Run]:
    """Every run, oldest first."""
    return list(session.scalars(select(Run).order_by(Run.created_at, Run.id)))


def next_version(session: Session, run: Run) -> int:
    """The version number the run's next snapshot gets (1 for the first)."""
    top = session.scalar(select(func.max(Snapshot.version)).where(Snapshot.run_id == run.id))
    return (top or 0) + 1


def add_snapshot(
    session: Session,
    run: Run,
    *,
    path: str,
    sha256: str,
    examples_seen: int,
    watermark: int | None,
    offsets: dict[str, int],
    version: int | None = None,
    metrics: dict[str, Any] | None = None,
    examples_trained: int | None = None,
    checkpoint_path: str | None = None,
    checkpoint_sha256: str | None = None,
    parent_version: int | None = None,
    base_version: int | None = None,
) -> Snapshot:
    """Record a snapshot file (and its checkpoint) and make it the run's latest, in the
    caller's transaction."""
    snapshot = Snapshot(
        run_id=run.id,
        version=next_version(session, run) if version is None else version,
        path=path,
        sha256=sha256,
        examples_seen=examples_seen,
        examples_trained=examples_trained,
        watermark=watermark,
        offsets=offsets,
        created_at=_now(),
        metrics=metrics,
        checkpoint_path=checkpoint_path,
        checkpoint_sha256=checkpoint_sha256,
        resumable=True,
        parent_version=parent_version,
        base_version=base_version,
    )
    session.add(snapshot)
    session.flush()
    run.latest_snapshot_id = snapshot.id
    return snapshot


def list_snapshots(session: Session, run_name: str) -> list[Snapshot]:
    """The run's snapshots, oldest version first."""
    run = get_run(session, run_name)
    return list(
        session.scalars(
            select(Snapshot).where(Snapshot.run_id == run.id).order_by(Snapshot.version)
        )
    )


def latest_snapshot(session: Session, run: Run) -> Snapshot | None:
    """The snapshot the run's latest pointer names, or None before the first one."""
    if run.latest_snapshot_id is None:
        return None
    return session.get(Snapshot, run.latest_snapshot_id)


def remove_snapshot(session: Session, snapshot: Snapshot) -> None:
    """Delete a snapshot's row; if it was the run's latest, the previous version becomes latest."""
    run = session.get(Run, snapshot.run_id)
    if run is not None and run.latest_snapshot_id == snapshot.id:
        previous = session.scalars(
            select(Snapshot)
            .where(Snapshot.run_id == run.id, Snapshot.id != snapshot.id)
            .order_by(Snapshot.version.desc())
            .limit(1)
        ).one_or_none()
        run.latest_snapshot_id = None if previous is None else previous.id
        session.flush()
    session.delete(snapshot)
    session.flush()
