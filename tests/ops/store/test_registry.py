"""The registry on SQLite and on the PostgreSQL server: migrations, runs, snapshots, latest pointer."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from ops.errors import RegistryError
from ops.store.database import (
    add_snapshot,
    ensure_run,
    get_run,
    latest_snapshot,
    list_runs,
    list_snapshots,
    make_engine,
    migrate,
    remove_snapshot,
)


def _add(session: Session, run, examples: int):
    return add_snapshot(
        session,
        run,
        path=f"/snapshots/{examples}.pt",
        sha256="ab" * 32,
        examples_seen=examples,
        watermark=1_000 + examples,
        offsets={"0": examples // 10},
    )


def test_migrations_create_both_tables_and_are_idempotent(registry) -> None:
    engine = registry.kw["bind"]
    migrate(engine)  # a second start finds the schema at head and changes nothing
    tables = set(inspect(engine).get_table_names())
    assert {"runs", "snapshots", "alembic_version"} <= tables


def test_each_snapshot_becomes_the_runs_latest_in_the_same_transaction(registry) -> None:
    with registry.begin() as session:
        run = ensure_run(session, name="mmn-a", model="mmn", config={"batch": 256})
        first = _add(session, run, 100)
    with registry.begin() as session:
        run = get_run(session, "mmn-a")
        second = _add(session, run, 200)
    with registry() as session:
        run = get_run(session, "mmn-a")
        assert latest_snapshot(session, run).id == second.id
        rows = list_snapshots(session, "mmn-a")
    assert [(s.version, s.examples_seen, s.offsets) for s in rows] == [
        (1, 100, {"0": 10}),
        (2, 200, {"0": 20}),
    ]
    assert first.id != second.id
    assert set(rows[0].as_dict()) >= {
        "version",
        "path",
        "sha256",
        "examples_seen",
        "watermark",
        "created_at",
    }


def test_a_failed_transaction_leaves_neither_row_nor_pointer(registry) -> None:
    with registry.begin() as session:
        run = ensure_run(session, name="mmn-b", model="mmn", config={})
        _add(session, run, 50)
    with pytest.raises(RuntimeError), registry.begin() as session:
        _add(session, get_run(session, "mmn-b"), 60)
        raise RuntimeError("crash before commit")
    with registry() as session:
        run = get_run(session, "mmn-b")
        assert [s.examples_seen for s in list_snapshots(session, "mmn-b")] == [50]
        assert latest_snapshot(session, run).examples_seen == 50


def test_removing_the_latest_points_the_run_back_to_the_previous_one(registry) -> None:
    with registry.begin() as session:
        run = ensure_run(session, name="mmn-c", model="mmn", config={})
        _add(session, run, 1)
        _add(session, run, 2)
        last = _add(session, run, 3)
    with registry.begin() as session:
        remove_snapshot(session, session.get(type(last), last.id))
    with registry() as session:
        run = get_run(session, "mmn-c")
        assert latest_snapshot(session, run).examples_seen == 2
        assert [s.version for s in list_snapshots(session, "mmn-c")] == [1, 2]


def test_runs_are_listed_and_an_existing_run_keeps_its_model(registry) -> None:
    with registry.begin() as session:
        ensure_run(session, name="mmn-d", model="mmn", config={})
        ensure_run(session, name="esmm-d", model="esmm", config={})
    with registry.begin() as session:
        assert [r.name for r in list_runs(session)] == ["mmn-d", "esmm-d"]
        assert ensure_run(session, name="mmn-d", model="mmn", config={}).model == "mmn"
        with pytest.raises(RegistryError, match="trains model 'mmn', not 'esmm'"):
            ensure_run(session, name="mmn-d", model="esmm", config={})


def test_an_unknown_run_names_the_known_ones(registry) -> None:
    with registry.begin() as session:
        ensure_run(session, name="known", model="mmn", config={})
    with registry() as session, pytest.raises(RegistryError, match="unknown run 'nope'.*known"):
        get_run(session, "nope")


def test_a_bad_url_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match="cannot use registry URL"):
        make_engine("nosuchdialect://x")


def test_snapshots_registered_before_checkpoints_stay_resumable_from_their_file(tmp_path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from ops.store.database import MIGRATIONS_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003_status_leases")
        connection.execute(text("INSERT INTO runs (name, model, config, created_at) "
                                "VALUES ('old', 'mmn', '{}', '2026-01-01')"))  # fmt: skip
        connection.execute(text(
            "INSERT INTO snapshots (run_id, version, path, sha256, examples_seen, offsets, "
            "created_at) VALUES (1, 1, '/old/v000001.pt', 'ab', 5, '{}', '2026-01-01')"
        ))  # fmt: skip
    migrate(engine)
    with Session(engine) as session:
        (row,) = list_snapshots(session, "old")
        assert row.resumable and row.checkpoint_path is None and row.checkpoint_sha256 is None
