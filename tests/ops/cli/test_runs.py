"""`mmn runs list` and `mmn snapshots list RUN --json` read the registry."""

from __future__ import annotations

import json

import pytest

from ops.cli import main
from ops.store.database import add_snapshot, ensure_run, open_registry


@pytest.fixture
def db(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    Session = open_registry(url)
    with Session.begin() as session:
        run = ensure_run(session, name="mmn-a", model="mmn", config={})
        for version in (1, 2):
            add_snapshot(
                session,
                run,
                path=f"/snapshots/mmn-a/v{version:06d}.pt",
                sha256=f"{version}" * 64,
                examples_seen=1000 * version,
                watermark=86_400 * version,
                offsets={"0": 10 * version},
            )
        ensure_run(session, name="esmm-a", model="esmm", config={})
    return url


def test_snapshots_list_json_has_the_documented_fields(db, capsys) -> None:
    assert main(["snapshots", "list", "mmn-a", "--db", db, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["examples_seen"] == 2000 and rows[1]["watermark"] == 172_800
    assert {"version", "path", "sha256", "examples_seen", "watermark", "created_at"} <= set(rows[0])


def test_runs_list_shows_each_run_with_its_latest_snapshot(db, capsys) -> None:
    assert main(["runs", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "mmn-a" in out and "v2" in out and "1970-01-03T00:00:00Z" in out
    assert main(["runs", "list", "--db", db, "--json"]) == 0
    runs = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
    assert runs["esmm-a"]["latest_version"] is None and runs["mmn-a"]["latest_version"] == 2


def test_an_unknown_run_is_a_one_line_error(db, capsys) -> None:
    assert main(["snapshots", "list", "nope", "--db", db]) == 2
    assert "unknown run 'nope'; known runs: mmn-a, esmm-a" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["runs", "list"], ["snapshots", "list", "mmn-a"]])
def test_read_only_commands_never_create_a_registry(tmp_path, capsys, command) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    assert main([*command, "--db", f"sqlite:///{missing}"]) == 2
    assert "no registry at" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    empty = tmp_path / "empty.db"
    empty.touch()  # a database without the registry's tables is not an empty registry
    assert main([*command, "--db", f"sqlite:///{empty}"]) == 2
    assert "no runs table" in capsys.readouterr().err


def test_a_stored_time_no_date_can_show_still_lists(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with open_registry(url).begin() as session:
        run = ensure_run(session, name="poisoned", model="mmn", config={})
        add_snapshot(
            session, run, path="/s.pt", sha256="0" * 64, examples_seen=1,
            watermark=1_597_000_000_000, offsets={},
        )  # fmt: skip
    for command in (["runs", "list"], ["snapshots", "list", "poisoned"]):
        assert main([*command, "--db", url]) == 0
        assert "1597000000000" in capsys.readouterr().out
