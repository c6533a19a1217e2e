"""Snapshot retention: keep the newest N, never the latest or a serving one; file and row together."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from sqlalchemy import text

from ops.cli import main
from ops.store import retention
from ops.store.database import get_run, list_snapshots, open_registry
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


def test_snapshots_serving_an_experiment_are_kept(tmp_path: Path, url: str) -> None:
    Session = open_registry(url)
    store = _store(tmp_path, Session, keep=None)
    _publish(store, 8, first_watermark=1000)  # watermarks 1000 .. 1700
    store.close()
    with Session.begin() as session:
        # The registry's own experiment tables (migration 0002): a finished experiment scored
        # with v2; an unfinished one has reached event time 1450.
        now = datetime.now(UTC)
        for exp_id, name, watermark, finished in (
            (1, "done", 1200, True),
            (2, "running", 1450, False),
        ):
            session.execute(
                text(
                    "INSERT INTO experiments (id, name, config, offsets, end_offsets, watermark, "
                    "finished, created_at, updated_at) VALUES (:i, :n, :c, '{}', '{}', :w, :f, "
                    ":t, :t)"
                ),
                {"i": exp_id, "n": name, "c": '{"arms": {"a": "run-a"}}', "w": watermark,
                 "f": finished, "t": now},
            )  # fmt: skip
        for row, version in enumerate((2, None)):
            session.execute(
                text(
                    "INSERT INTO experiment_predictions (experiment_id, arm, impression_id, "
                    "user_id, conv_type, scenario, ts, final_ts, window_start, assigned, "
                    "snapshot_version, prediction, label) VALUES (1, 'a', :imp, 'u', 't', 's', "
                    "1100, 1100, 0, 1, :v, 0.5, 0)"
                ),
                {"imp": f"i{row}", "v": version},
            )
    # While the running one runs, nothing goes: its held clicks may need any snapshot.
    assert retention.prune(Session, "run-a", keep=1).versions == ()
    with Session.begin() as session:
        session.execute(text("UPDATE experiments SET finished = :f WHERE id = 2"), {"f": True})
    # Both finished: v2 scored the first one and the newest stays; the rest go.
    result = retention.prune(Session, "run-a", keep=1)
    assert result.versions == (1, 3, 4, 5, 6, 7)
    assert _files_and_rows_agree(Session, store.folder) == [2, 8]
    with Session() as session:
        assert get_run(session, "run-a").latest_snapshot_id is not None
