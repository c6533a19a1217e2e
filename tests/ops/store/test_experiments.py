"""Experiment tables on SQLite and PostgreSQL: migration, config check, atomic results and offsets."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from ops.errors import RegistryError
from ops.store.database import add_snapshot, ensure_run, migrate
from ops.store.experiments import (
    commit_results,
    decided_impressions,
    ensure_experiment,
    get_experiment,
    predictions,
)

CONFIG = {"arms": {"control": "run-a", "treatment": "run-b"}, "split": {"control": 1}}


def _row(arm: str, impression: str, p: float | None, label: int, final_ts: int) -> dict:
    return dict(
        arm=arm,
        impression_id=impression,
        user_id="u" + impression,
        conv_type="t1",
        scenario="s1",
        ts=final_ts - 10,
        final_ts=final_ts,
        window_start=0,
        assigned=arm == "control",
        snapshot_version=None if p is None else 3,
        prediction=p,
        label=label,
    )


def test_migration_adds_the_tables_and_the_snapshot_metrics(registry) -> None:
    engine = registry.kw["bind"]
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"experiments", "experiment_predictions"} <= tables
    assert "metrics" in {c["name"] for c in inspect(engine).get_columns("snapshots")}
    with registry.begin() as session:
        run = ensure_run(session, name="r", model="mmn", config={})
        add_snapshot(
            session, run, path="/x", sha256="0" * 64, examples_seen=1, watermark=5,
            offsets={}, metrics={"overall": {"log_loss": 0.25}},
        )  # fmt: skip
    with registry() as session:
        assert run.id is not None
        assert session.get(type(run), run.id).name == "r"


def test_results_and_offsets_commit_together_and_read_back_in_order(registry) -> None:
    with registry.begin() as session:
        exp = ensure_experiment(session, "exp", CONFIG)
        commit_results(
            session,
            exp,
            [_row("control", "2", 0.125, 1, 50), _row("treatment", "1", None, 0, 40)],
            offsets={"0": 7},
            watermark=50,
            end_offsets={"0": 6},
        )
    with pytest.raises(IntegrityError), registry.begin() as session:
        exp = get_experiment(session, "exp")
        # A second row for the same (arm, impression) is refused, and the offsets stay.
        commit_results(
            session, exp, [_row("control", "2", 0.5, 1, 50)], offsets={"0": 99}, watermark=60
        )
    with registry() as session:
        exp = get_experiment(session, "exp")
        assert exp.offsets == {"0": 7} and exp.end_offsets == {"0": 6} and exp.watermark == 50
        table = predictions(session, "exp")
        assert decided_impressions(session, exp) == {"1", "2"}
    assert table["impression_id"].tolist() == ["1", "2"]  # by final_ts
    assert math.isnan(table["prediction"][0]) and table["prediction"][1] == 0.125
    assert table["snapshot_version"].tolist() == [-1, 3]


def test_a_restart_must_bring_the_same_config(registry) -> None:
    with registry.begin() as session:
        ensure_experiment(session, "exp", CONFIG)
    with registry.begin() as session:
        ensure_experiment(session, "exp", CONFIG)  # the same: resumes
    with pytest.raises(RegistryError, match="exists with config"), registry.begin() as session:
        ensure_experiment(session, "exp", {**CONFIG, "shadow": True})
    with pytest.raises(RegistryError, match="unknown experiment 'nope'"), registry() as session:
        get_experiment(session, "nope")


def _downgrade(engine, revision: str) -> None:
    """Take the registry's schema back to revision."""
    from alembic import command
    from alembic.config import Config

    from ops.store.database import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_migration_0005_records_the_versions_that_stored_predictions_name(registry) -> None:
    """The served versions of predictions stored before the table existed are filled in once."""
    from sqlalchemy import text

    from ops.store.experiments import served_versions

    engine = registry.kw["bind"]
    _downgrade(engine, "0004_checkpoints")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO experiments (id, name, config, offsets, end_offsets, finished, "
            "created_at, updated_at) VALUES (1, 'old', '{}', '{}', '{}', :f, :t, :t)"
        ), {"f": False, "t": "2026-01-01"})  # fmt: skip
        for i, (arm, version) in enumerate([("a", 2), ("a", 2), ("a", 3), ("a", None), ("b", 5)]):
            connection.execute(text(
                "INSERT INTO experiment_predictions (experiment_id, arm, impression_id, user_id, "
                "conv_type, scenario, ts, final_ts, window_start, assigned, snapshot_version, "
                "prediction, label) VALUES (1, :a, :i, 'u', 't', 's', 1, 1, 0, :y, :v, 0.5, 0)"
            ), {"a": arm, "i": str(i), "y": True, "v": version})  # fmt: skip
    migrate(engine)
    with registry() as session:
        assert served_versions(session, 1, ["a"]) == {2, 3}
        assert served_versions(session, 1, ["b"]) == {5}
        assert get_experiment(session, "old").low_water is None


def test_written_rows_record_their_versions_and_the_low_water_mark(registry) -> None:
    from ops.store.experiments import served_versions

    with registry.begin() as session:
        exp = ensure_experiment(session, "exp", CONFIG)
        rows = [_row("control", "1", 0.2, 0, 100), _row("treatment", "1", None, 0, 100)]
        commit_results(session, exp, rows, offsets={"0": 1}, watermark=100, low_water=40)
        commit_results(session, exp, [_row("control", "2", 0.3, 1, 150)], offsets={"0": 2},
                       watermark=200)  # fmt: skip
    with registry() as session:
        exp = get_experiment(session, "exp")
        assert served_versions(session, exp.id, ["control"]) == {3}
        assert served_versions(session, exp.id, ["treatment"]) == set()
        assert exp.low_water == 40  # a commit without one keeps it


def test_migration_0006_takes_the_label_windows_out_of_recorded_configs(registry) -> None:
    """An experiment recorded with the windows as options resumes with today's config."""
    engine = registry.kw["bind"]
    _downgrade(engine, "0005_delta_snapshots")
    with registry.begin() as session:  # recorded by an older evaluator
        old = {**CONFIG, "observation_window_s": 3600, "attribution_window_s": 86400}
        ensure_experiment(session, "old", old)
        ensure_experiment(session, "other", {"arms": {"control": "run-c"}})
    migrate(engine)
    with registry.begin() as session:
        assert ensure_experiment(session, "old", CONFIG).config == CONFIG
        assert get_experiment(session, "other").config == {"arms": {"control": "run-c"}}
