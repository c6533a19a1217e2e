"""Snapshot retention: keep the newest N, never the latest or a serving one; file and row together."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
import torch
from sqlalchemy import text

from ops.cli import main
from ops.store import retention
from ops.store.database import get_run, list_snapshots, open_registry
from ops.store.experiments import commit_results, ensure_experiment
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


def _store(tmp_path: Path, Session, keep: int | None) -> SnapshotStore:
    config = SnapshotStoreConfig(directory=tmp_path / "snapshots", keep_snapshots=keep)
    return SnapshotStore(config, Session, run="run-a", model="mmn", run_config={})


def _publish(store: SnapshotStore, count: int, first_watermark: int = 0) -> None:
    for step in range(count):
        store.publish(
            {"w": torch.full((2,), float(step))},
            examples_seen=step,
            watermark=first_watermark + 100 * step,
            offsets={},
        )


def _files_and_rows_agree(Session, folder: Path) -> list[int]:
    with Session() as session:
        rows = list_snapshots(session, "run-a")
        assert {Path(r.path).name for r in rows} == {p.name for p in folder.glob("v*.pt")}
        assert not list(folder.glob("*.pruned"))
        return [r.version for r in rows]


def test_publishing_keeps_the_newest_n(tmp_path: Path, url: str) -> None:
    Session = open_registry(url)
    store = _store(tmp_path, Session, keep=3)
    _publish(store, 6)
    assert _files_and_rows_agree(Session, store.folder) == [4, 5, 6]
    store.close()


def test_prune_command_and_its_failure_leave_every_row_with_its_file(
    tmp_path: Path, url: str, capsys, monkeypatch
) -> None:
    Session = open_registry(url)
    store = _store(tmp_path, Session, keep=None)
    _publish(store, 5)
    store.close()
    real_replace = retention.os.replace
    calls = []

    def failing(src, dst):  # the second file cannot be set aside
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk says no")
        real_replace(src, dst)

    monkeypatch.setattr(retention.os, "replace", failing)
    assert main(["snapshots", "prune", "run-a", "--keep", "2", "--db", url]) == 2
    assert "disk says no; nothing was removed" in capsys.readouterr().err
    monkeypatch.setattr(retention.os, "replace", real_replace)
    assert _files_and_rows_agree(Session, store.folder) == [1, 2, 3, 4, 5]
    assert main(["snapshots", "prune", "run-a", "--keep", "2", "--db", url]) == 0
    assert "removed 3 snapshot(s) (v1, v2, v3); kept 2" in capsys.readouterr().out
    assert _files_and_rows_agree(Session, store.folder) == [4, 5]


def test_a_running_trainer_s_run_is_not_pruned_from_outside(tmp_path: Path, url: str, capsys):
    Session = open_registry(url)
    store = _store(tmp_path, Session, keep=None)
    _publish(store, 3)
    assert main(["snapshots", "prune", "run-a", "--keep", "1", "--db", url]) == 2
    assert "being written by a trainer" in capsys.readouterr().err
    store.close()


def _scored(arm: str, impression: str, version: int | None, ts: int = 1100) -> dict:
    return dict(arm=arm, impression_id=impression, user_id="u", conv_type="t", scenario="s",
                ts=ts, final_ts=ts, window_start=0, assigned=True, snapshot_version=version,
                prediction=None if version is None else 0.5, label=0)  # fmt: skip


def test_snapshots_serving_an_experiment_are_kept(tmp_path: Path, url: str) -> None:
    Session = open_registry(url)
    store = _store(tmp_path, Session, keep=None)
    _publish(store, 8, first_watermark=1000)  # watermarks 1000 .. 1700
    store.close()
    with Session.begin() as session:
        # A finished experiment scored with v2; an unfinished one has recorded no low-water
        # mark yet. Rows are written as the evaluator writes them.
        config = {"arms": {"a": "run-a"}}
        done = ensure_experiment(session, "done", config)
        commit_results(session, done, [_scored("a", "i0", 2), _scored("a", "i1", None)],
                       offsets={}, watermark=1200, finished=True)  # fmt: skip
        running = ensure_experiment(session, "running", config)
        commit_results(session, running, [], offsets={}, watermark=1450)
    # While the running one runs, nothing goes: its held clicks may need any snapshot.
    assert retention.prune(Session, "run-a", keep=1).versions == ()
    with Session.begin() as session:
        session.execute(
            text("UPDATE experiments SET finished = :f WHERE name = 'running'"), {"f": True}
        )
    # Both finished: v2 scored the first one and the newest stays; the rest go.
    result = retention.prune(Session, "run-a", keep=1)
    assert result.versions == (1, 3, 4, 5, 6, 7)
    assert _files_and_rows_agree(Session, store.folder) == [2, 8]
    with Session() as session:
        assert get_run(session, "run-a").latest_snapshot_id is not None


@pytest.mark.parametrize("low_water", [1450, 1500])
def test_a_running_experiment_keeps_what_can_serve_at_or_after_its_low_water_mark(
    tmp_path: Path, registry, low_water: int
) -> None:
    """Issue 20, item 6: besides the newest, the snapshots that can still serve a click at or
    after the evaluator's low-water mark, and those that served stored predictions."""
    store = _store(tmp_path, registry, keep=None)
    _publish(store, 8, first_watermark=1000)  # watermarks 1000 .. 1700
    store.close()
    with registry.begin() as session:
        running = ensure_experiment(session, "running", {"arms": {"a": "run-a", "b": "other"}})
        rows = [_scored("a", "i0", 2), _scored("b", "i1", 5), _scored("a", "i2", None)]
        commit_results(session, running, rows, offsets={}, watermark=1600, low_water=low_water)
    # A later commit without a mark (its evaluator holds nothing) keeps the recorded one.
    with registry.begin() as session:
        commit_results(session, ensure_experiment(session, "running", {"arms": {"a": "run-a",
                       "b": "other"}}), [], offsets={}, watermark=1650)  # fmt: skip
    result = retention.prune(registry, "run-a", keep=1)
    # v5 (watermark 1400) serves 1450 .. 1499; v6 (1500) serves 1500 on. v5 of arm b is
    # another run's; v2 served arm a's stored prediction.
    first = 5 if low_water == 1450 else 6
    assert _files_and_rows_agree(registry, store.folder) == [2, *range(first, 9)]
    assert result.serving == len(range(first, 8)) + 1


def _publish_model(store: SnapshotStore, steps: int) -> None:
    """Model-shaped payloads whose table changes in one row per step: delta snapshots."""
    table = torch.zeros(4096, 16)
    for step in range(steps):
        table = table.clone()
        table[step] = float(step + 1)
        store.publish(
            {"format": "x", "state_dict": {"table": table, "bias": torch.zeros(2)}},
            examples_seen=step,
            watermark=1000 + 100 * step,
            offsets={},
        )


def test_retention_keeps_every_link_of_a_kept_delta_chain(tmp_path: Path, registry) -> None:
    store = _store(tmp_path, registry, keep=None)
    _publish_model(store, 5)
    store.close()
    with registry() as session:
        parents = [r.parent_version for r in list_snapshots(session, "run-a")]
    assert parents == [None, 1, 2, 3, 4]
    with registry.begin() as session:
        done = ensure_experiment(session, "done", {"arms": {"a": "run-a"}})
        commit_results(
            session, done, [_scored("a", "i0", 3)], offsets={}, watermark=1, finished=True
        )
    # v3 served, v5 is the newest: both load through v1 and v2 (and v4 for v5).
    assert retention.prune(registry, "run-a", keep=1).versions == ()
    assert _files_and_rows_agree(registry, store.folder) == [1, 2, 3, 4, 5]


def test_retention_reads_no_prediction_rows(tmp_path: Path, registry) -> None:
    """The served versions come from their own table: pruning never scans the predictions."""
    store = _store(tmp_path, registry, keep=None)
    _publish(store, 3)
    store.close()
    with registry.begin() as session:
        done = ensure_experiment(session, "done", {"arms": {"a": "run-a"}})
        commit_results(
            session, done, [_scored("a", "i0", 1)], offsets={}, watermark=1, finished=True
        )
    statements: list[str] = []
    engine = registry.kw["bind"]
    listen = sqlalchemy.event.listen
    listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert retention.prune(registry, "run-a", keep=1).versions == (2,)
    assert statements and not [s for s in statements if "experiment_predictions" in s]
