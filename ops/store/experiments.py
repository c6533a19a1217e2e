"""A/B experiments in the registry database: their config, resume offsets and scored examples.

One `experiments` row per experiment: its config (arms and their runs, split, shadow,
window), the `minibatches` offsets to resume reading from, the offsets of the end markers
seen, and the event time reached. One `experiment_predictions` row per (arm, example)
scored or due: the prediction of the arm's serving snapshot (NULL when the arm had no
snapshot yet at the example's impression time), its final label and its domain. The
evaluator writes the rows of a flush and the new offsets in one transaction
(`commit_results`), so the table and the offsets always agree: a restarted evaluator reads
on from the offsets and its report is that of an uninterrupted run.

>>> from ops.store.database import open_registry
>>> Session = open_registry("sqlite://")
>>> with Session.begin() as session:
...     exp = ensure_experiment(session, "exp", {"arms": {"control": "run-a"}})
...     commit_results(session, exp, [dict(arm="control", impression_id="1", user_id="u",
...         conv_type="t", scenario="s", ts=5, final_ts=9, window_start=0, assigned=True,
...         snapshot_version=1, prediction=0.25, label=0)], offsets={"0": 3}, watermark=9)
>>> with Session() as session:
...     table = predictions(session, "exp")
...     get_experiment(session, "exp").offsets, table["prediction"].tolist()
({'0': 3}, [0.25])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ops.errors import RegistryError
from ops.store.database import Base, ensure_named

COLUMNS = (
    "arm",
    "impression_id",
    "user_id",
    "conv_type",
    "scenario",
    "ts",
    "final_ts",
    "window_start",
    "assigned",
    "snapshot_version",
    "prediction",
    "label",
)


def _now() -> datetime:
    return datetime.now(UTC)


class Experiment(Base):
    """An A/B experiment: arms (name -> run), split, shadow, window; where its evaluator is."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    offsets: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    end_offsets: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    watermark: Mapped[int | None] = mapped_column(BigInteger, default=None)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # running, finished (end of stream), stopped (a signal) or failed (an error); the
    # detail names the signal or the error.
    status: Mapped[str] = mapped_column(String(20), default="running", server_default="running")
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    status_detail: Mapped[str | None] = mapped_column(Text, default=None)
    # The oldest impression time its evaluator may still score (clicks it holds, and those
    # it has not read yet); None until it says: retention keeps every snapshot then.
    low_water: Mapped[int | None] = mapped_column(BigInteger, default=None)


class ServedVersion(Base):
    """A snapshot version that served stored predictions of an experiment's arm: what
    retention keeps, read without scanning the predictions (`commit_results` writes it)."""

    __tablename__ = "experiment_served_versions"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    arm: Mapped[str] = mapped_column(String(100), primary_key=True)
    snapshot_version: Mapped[int] = mapped_column(Integer, primary_key=True)


class Prediction(Base):
    """One example as one arm scored it: serving snapshot, prediction, final label, domain.

    assigned: the example's user belongs to this arm (in shadow mode every arm scores every
    example, and exactly one row per example is assigned). window_start: start of the
    event-time window of the impression. final_ts: event time at which the label was final.
    """

    __tablename__ = "experiment_predictions"
    __table_args__ = (
        UniqueConstraint(
            "experiment_id", "arm", "impression_id", name="uq_experiment_predictions_example"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    arm: Mapped[str] = mapped_column(String(100))
    impression_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(200))
    conv_type: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(String(200))
    ts: Mapped[int] = mapped_column(BigInteger)
    final_ts: Mapped[int] = mapped_column(BigInteger)
    window_start: Mapped[int] = mapped_column(BigInteger)
    assigned: Mapped[bool] = mapped_column(Boolean)
    snapshot_version: Mapped[int | None] = mapped_column(Integer)
    prediction: Mapped[float | None] = mapped_column(Double)
    label: Mapped[int] = mapped_column(SmallInteger)


def ensure_experiment(session: Session, name: str, config: Mapping[str, Any]) -> Experiment:
    """The experiment called name, created if new; a restart must bring the same config."""
    return ensure_named(
        session,
        Experiment,
        name,
        create=lambda: Experiment(
            name=name, config=dict(config), offsets={}, end_offsets={}, finished=False
        ),
        refuse=lambda found: (
            None
            if found.config == dict(config)
            else f"experiment {name!r} exists with config {found.config}, not {dict(config)}; "
            "resume it with the same options or choose another --experiment name"
        ),
    )


def get_experiment(session: Session, name: str) -> Experiment:
    """The experiment called name; an unknown name lists the known ones."""
    found = session.scalars(select(Experiment).where(Experiment.name == name)).one_or_none()
    if found is None:
        known = ", ".join(session.scalars(select(Experiment.name).order_by(Experiment.id)))
        raise RegistryError(f"unknown experiment {name!r}; known experiments: {known or 'none'}")
    return found


def commit_results(
    session: Session,
    experiment: Experiment,
    rows: Iterable[Mapping[str, Any]],
    *,
    offsets: Mapping[str, int],
    watermark: int | None,
    end_offsets: Mapping[str, int] | None = None,
    finished: bool = False,
    low_water: int | None = None,
) -> None:
    """Add scored rows and move the resume offsets, in the caller's transaction; record the
    versions the rows name (`ServedVersion`) and the evaluator's low-water mark (None: keep
    the recorded one)."""
    rows = list(rows)
    columns, experiment_id = itemgetter(*COLUMNS), experiment.id
    values = [(experiment_id, *columns(row)) for row in rows]
    _record_served(session, experiment, {(r["arm"], r["snapshot_version"]) for r in rows})
    if values:
        _insert_predictions(session, values)
    experiment.offsets = dict(offsets)
    if end_offsets is not None:
        experiment.end_offsets = dict(end_offsets)
    experiment.watermark = watermark
    experiment.finished = finished
    if low_water is not None:
        experiment.low_water = low_water
    experiment.updated_at = _now()


def _insert_predictions(session: Session, values: list[tuple[Any, ...]]) -> None:
    """Rows into the predictions table in bulk, in the session's transaction: `COPY` on
    PostgreSQL, the driver's own executemany elsewhere (SQLAlchemy's insert paths cost more
    per row than the database does: measured ~60 us a row through Core, ~100 through the ORM)."""
    connection = session.connection()
    columns = f"experiment_id, {', '.join(COLUMNS)}"
    table = Prediction.__tablename__
    if connection.dialect.name == "postgresql":
        sql = f"COPY {table} ({columns}) FROM STDIN"
        driver = connection.connection.driver_connection
        assert driver is not None  # a pooled connection in use always has its driver's
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for value in values:
                    copy.write_row(value)
        except connection.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy raises it
            raise DBAPIError.instance(
                sql, None, exc, connection.dialect.loaded_dbapi.Error
            ) from exc
        return
    marks = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join([marks] * (len(COLUMNS) + 1))})"
    connection.exec_driver_sql(sql, values)


def _record_served(session: Session, experiment: Experiment, used: set[tuple[str, Any]]) -> None:
    """Add the (arm, version) pairs not recorded yet (a batch names a few)."""
    used = {(arm, version) for arm, version in used if version is not None}
    if not used:
        return
    known = set(
        session.execute(
            select(ServedVersion.arm, ServedVersion.snapshot_version).where(
                ServedVersion.experiment_id == experiment.id,
                ServedVersion.arm.in_({arm for arm, _ in used}),
            )
        )
    )
    session.add_all(
        ServedVersion(experiment_id=experiment.id, arm=arm, snapshot_version=version)
        for arm, version in sorted(used - known)
    )
    session.flush()


def served_versions(session: Session, experiment_id: int, arms: Iterable[str]) -> set[int]:
    """The snapshot versions that served stored predictions of these arms of an experiment."""
    return set(
        session.scalars(
            select(ServedVersion.snapshot_version).where(
                ServedVersion.experiment_id == experiment_id, ServedVersion.arm.in_(list(arms))
            )
        )
    )


STATES = ("running", "finished", "stopped", "failed")
# A `running` experiment whose evaluator wrote this recently is taken as alive (a running
# evaluator writes at least every 10 s: ops.evaluation.evaluator.HEARTBEAT_S).
LIVE_WITHIN_S = 60


def record_status(session: Session, experiment: Experiment, state: str, detail: str | None) -> None:
    """What the experiment's evaluator is doing now (running is also its heartbeat)."""
    if state not in STATES:
        raise RegistryError(f"unknown experiment status {state!r}; one of {STATES}")
    experiment.status = state
    experiment.status_at = _now()
    experiment.status_detail = detail


def last_heard(experiment: Experiment) -> datetime:
    """When the experiment's evaluator last wrote its status or rows (UTC)."""
    times = [t for t in (experiment.status_at, experiment.updated_at) if t is not None]
    # SQLite hands back naive datetimes; the registry writes UTC.
    return max(t if t.tzinfo else t.replace(tzinfo=UTC) for t in times)


def delete_experiment(session: Session, experiment: Experiment) -> int:
    """Remove the experiment and its predictions, in the caller's transaction; rows removed."""
    mine = Prediction.experiment_id == experiment.id
    removed = session.scalar(select(func.count()).select_from(Prediction).where(mine)) or 0
    session.execute(delete(Prediction).where(mine))
    session.execute(delete(ServedVersion).where(ServedVersion.experiment_id == experiment.id))
    session.delete(experiment)
    return removed


def decided_impressions(session: Session, experiment: Experiment) -> set[str]:
    """Impression ids whose rows are stored: a restart must not count them twice."""
    return set(
        session.scalars(
            select(Prediction.impression_id)
            .where(Prediction.experiment_id == experiment.id)
            .distinct()
        )
    )


def predictions(session: Session, name: str) -> dict[str, np.ndarray]:
    """Every stored row of the experiment as columns, ordered by (final_ts, impression_id, arm)."""
    experiment = get_experiment(session, name)
    result = session.execute(
        select(*(getattr(Prediction, c) for c in COLUMNS))
        .where(Prediction.experiment_id == experiment.id)
        .order_by(Prediction.final_ts, Prediction.impression_id, Prediction.arm)
    ).all()
    columns = list(zip(*result, strict=True)) if result else [()] * len(COLUMNS)
    out: dict[str, np.ndarray] = {}
    for name_, values in zip(COLUMNS, columns, strict=True):
        if name_ == "prediction":
            out[name_] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif name_ == "snapshot_version":
            out[name_] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        elif name_ in ("ts", "final_ts", "window_start", "label"):
            out[name_] = np.array(values, dtype=np.int64)
        elif name_ == "assigned":
            out[name_] = np.array(values, dtype=bool)
        else:
            out[name_] = np.array(values, dtype=object)
    return out
