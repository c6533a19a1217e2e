"""The snapshot store: atomic publish + registry row, checksum refusal and fallback, reconciliation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ops.errors import ConfigError, SnapshotCorruptError, SnapshotStoreError
from ops.store.database import get_run, latest_snapshot, list_runs, list_snapshots, open_registry
from ops.store.snapshot_files import load_snapshot
from ops.store.snapshots import (
    CORRUPT_SUFFIX,
    Reconciliation,
    SnapshotStore,
    SnapshotStoreConfig,
    sha256_of,
)


@pytest.fixture
def registry(tmp_path: Path):
    return open_registry(f"sqlite:///{tmp_path / 'registry.db'}")


def _store(tmp_path: Path, registry, run: str = "run-a") -> SnapshotStore:
    return SnapshotStore(
        SnapshotStoreConfig(directory=tmp_path / "snapshots"),
        registry,
        run=run,
        model="mmn",
        run_config={"lr": 0.05},
    )


def _publish(store: SnapshotStore, step: int):
    return store.publish(
        {"weights": torch.full((4,), float(step)), "step": step},
        examples_seen=100 * step,
        watermark=3600 * step,
        offsets={"0": 10 * step, "1": 5 * step},
    )


def test_publish_writes_the_file_then_the_row_that_becomes_latest(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    first = _publish(store, 1)
    second = _publish(store, 2)
    assert (first.version, second.version) == (1, 2)
    assert (
        Path(second.path).read_bytes()
        and sha256_of(Path(second.path).read_bytes()) == second.sha256
    )
    with registry() as session:
        run = get_run(session, "run-a")
        assert latest_snapshot(session, run).version == 2
        assert [s.offsets for s in list_snapshots(session, "run-a")] == [
            {"0": 10, "1": 5},
            {"0": 20, "1": 10},
        ]
    loaded, payload = store.load_latest()
    assert loaded == second
    assert payload["step"] == 2 and payload["weights"].tolist() == [2.0] * 4
    assert not [p for p in Path(second.path).parent.iterdir() if ".tmp" in p.name]
    store.close()


def test_a_flipped_byte_is_refused_with_a_clear_error(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    published = _publish(store, 1)
    path = Path(published.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(
        SnapshotCorruptError, match=r"is corrupt: its sha256 is [0-9a-f]{64}, the registry recorded"
    ):
        load_snapshot(path, published.sha256)
    store.close()


def test_the_run_falls_back_to_the_previous_good_snapshot(tmp_path, registry, caplog) -> None:
    store = _store(tmp_path, registry)
    _publish(store, 1)
    bad = _publish(store, 2)
    path = Path(bad.path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))

    loaded, payload = store.load_latest()

    assert loaded.version == 1 and payload["step"] == 1
    assert "is corrupt" in caplog.text
    assert not path.exists() and path.with_name(path.name + CORRUPT_SUFFIX).exists()
    with registry() as session:
        assert [s.version for s in list_snapshots(session, "run-a")] == [1]
        assert latest_snapshot(session, get_run(session, "run-a")).version == 1
    # The next snapshot does not reuse the quarantined version number.
    assert _publish(store, 3).version == 3
    store.close()


def test_every_snapshot_corrupt_means_starting_fresh(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    only = _publish(store, 1)
    Path(only.path).write_bytes(b"garbage")
    assert store.load_latest() is None
    store.close()


def test_reconcile_removes_unpublished_files_and_rows_without_files(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    kept = _publish(store, 1)
    gone = _publish(store, 2)
    Path(gone.path).unlink()  # a row whose file vanished
    folder = Path(kept.path).parent
    (folder / "v000003.pt").write_bytes(b"renamed, crashed before the row")
    (folder / ".v000004.pt.k2x9.tmp").write_bytes(b"crashed mid-write (write_atomically's name)")

    result = store.reconcile()

    assert result.rows_removed == (2,)
    assert sorted(Path(p).name for p in result.files_removed) == [
        ".v000004.pt.k2x9.tmp",
        "v000003.pt",
    ]
    assert sorted(p.name for p in folder.iterdir() if p.name != ".lock") == ["v000001.pt"]
    with registry() as session:
        assert latest_snapshot(session, get_run(session, "run-a")).version == 1
    store.close()


def test_a_second_writer_on_the_same_run_is_refused(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    with pytest.raises(SnapshotStoreError, match="being written by another trainer"):
        _store(tmp_path, registry)
    store.close()
    _store(tmp_path, registry).close()  # the lock is released on close


def test_the_run_row_comes_with_the_first_snapshot(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)
    assert store.load_latest() is None and store.reconcile().rows_removed == ()
    with registry() as session:
        assert list_runs(session) == []  # a start that fails before publishing leaves no row
    _publish(store, 1)
    with registry() as session:
        assert [r.name for r in list_runs(session)] == ["run-a"]
    store.close()


def _reopened(tmp_path, registry, config: dict, reconfigurable=None) -> SnapshotStore:
    return SnapshotStore(
        SnapshotStoreConfig(directory=tmp_path / "snapshots"),
        registry,
        run="run-a",
        model="mmn",
        run_config=config,
        reconfigurable=reconfigurable,
    )


def test_resuming_with_other_options_is_refused_naming_each_difference(tmp_path, registry) -> None:
    store = _reopened(tmp_path, registry, {"lr": 0.05, "shape": {"hidden": [8, 4]}})
    _publish(store, 1)
    store.close()
    new = {"lr": 0.1, "shape": {"hidden": [16, 4]}}
    with pytest.raises(ConfigError, match=r"lr: 0.05 -> 0.1; shape.hidden: \[8, 4\] -> \[16, 4\]"):
        _reopened(tmp_path, registry, new)
    with pytest.raises(ConfigError, match="cannot change shape.hidden"):
        _reopened(tmp_path, registry, new, reconfigurable=lambda key: key == "lr")
    accepted = {"lr": 0.1, "shape": {"hidden": [8, 4]}}
    store = _reopened(tmp_path, registry, accepted, reconfigurable=lambda key: key == "lr")
    _publish(store, 2)  # the accepted options are the run's from now on
    store.close()
    _reopened(tmp_path, registry, accepted).close()


@pytest.mark.parametrize("name", ["../../etc/evil", "a/b", ".hidden", "..", "", "x" * 101, "ü"])
def test_a_run_name_is_never_a_path(tmp_path, registry, name: str) -> None:
    with pytest.raises(ConfigError, match="--run"):
        _store(tmp_path, registry, run=name)
    assert not (tmp_path / "snapshots").exists()


def _publish_with_checkpoint(store: SnapshotStore, step: int):
    return store.publish(
        {
            "weights": torch.full((4,), float(step)),
            "step": step,
            "checkpoint": {"optimizer": torch.full((4,), -float(step)), "pending": [step]},
        },
        examples_seen=100 * step,
        watermark=3600 * step,
        offsets={"0": 10 * step},
    )


def test_serving_files_leave_the_checkpoint_out_and_resume_reads_both(tmp_path, registry) -> None:
    store = _store(tmp_path, registry)  # keep_checkpoints defaults to 2
    published = [_publish_with_checkpoint(store, step) for step in (1, 2, 3, 4)]

    serving = load_snapshot(published[-1].path, published[-1].sha256)
    assert "checkpoint" not in serving and serving["step"] == 4
    loaded, payload = store.load_latest()
    assert loaded.version == 4 and payload["step"] == 4
    assert torch.equal(payload["checkpoint"]["optimizer"], torch.full((4,), -4.0))
    assert payload["checkpoint"]["pending"] == [4]

    folder = Path(published[0].path).parent
    names = sorted(p.name for p in folder.iterdir() if p.name != ".lock")
    assert names == ["v000002.pt", "v000003.ckpt", "v000003.pt", "v000004.ckpt", "v000004.pt"]
    with registry() as session:
        rows = list_snapshots(session, "run-a")
        assert [(r.version, r.resumable) for r in rows] == [(2, False), (3, True), (4, True)]
        assert rows[0].checkpoint_path is None and rows[0].checkpoint_sha256 is None
    assert store.reconcile().files_removed == ()  # every file left belongs to a row
    store.close()


def test_a_corrupt_checkpoint_quarantines_its_snapshot_and_resumes_from_the_previous(
    tmp_path, registry
) -> None:
    store = _store(tmp_path, registry)
    _publish_with_checkpoint(store, 1)
    bad = _publish_with_checkpoint(store, 2)
    assert bad.checkpoint_path is not None
    Path(bad.checkpoint_path).write_bytes(b"garbage")

    loaded, payload = store.load_latest()

    assert loaded.version == 1 and payload["checkpoint"]["pending"] == [1]
    assert Path(bad.path + CORRUPT_SUFFIX).exists()
    assert Path(bad.checkpoint_path + CORRUPT_SUFFIX).exists()
    with registry() as session:
        assert [s.version for s in list_snapshots(session, "run-a")] == [1]
    store.close()


def test_a_checkpoint_written_before_a_crash_is_removed_with_its_serving_file(
    tmp_path, registry
) -> None:
    store = _store(tmp_path, registry)
    kept = _publish_with_checkpoint(store, 1)
    folder = Path(kept.path).parent
    (folder / "v000002.pt").write_bytes(b"renamed, crashed before the row")
    (folder / "v000002.ckpt").write_bytes(b"renamed, crashed before the row")

    result = store.reconcile()

    assert sorted(Path(p).name for p in result.files_removed) == ["v000002.ckpt", "v000002.pt"]
    assert result.rows_removed == ()
    # A checkpoint that vanished: its snapshot serves on, but nothing can resume from it.
    Path(kept.checkpoint_path).unlink()
    assert store.reconcile() == Reconciliation()
    with registry() as session:
        row = list_snapshots(session, "run-a")[0]
        assert row.checkpoint_path is None and not row.resumable
    assert Path(kept.path).is_file() and store.load_latest() is None
    store.close()


def test_keep_checkpoints_below_one_is_refused() -> None:
    with pytest.raises(SnapshotStoreError, match="keep_checkpoints must be at least 1"):
        SnapshotStoreConfig(keep_checkpoints=0)
