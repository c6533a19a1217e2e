"""Output folders: `mmn data synth` and `mmn demo` never write over someone else's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.cli import main
from ops.cli.outputs import MARKER, claim_output
from ops.errors import ConfigError


def test_a_folder_with_other_files_is_refused_and_untouched(tmp_path: Path, capsys) -> None:
    real = tmp_path / "CriteoSearchData"
    real.write_text("the real log\n")
    assert main(["data", "synth", "--rows", "50", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert real.read_text() == "the real log\n" and not (tmp_path / MARKER).exists()


def test_synth_rewrites_its_own_folder_and_force_overrides(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", "--rows", "50", "--out", str(out)]) == 0
    assert main(["data", "synth", "--rows", "60", "--out", str(out)]) == 0  # its own: fine
    assert len((out / "CriteoSearchData").read_text().splitlines()) == 60
    (out / MARKER).unlink()
    assert main(["data", "synth", "--rows", "50", "--out", str(out)]) == 2
    assert main(["data", "synth", "--rows", "50", "--out", str(out), "--force"]) == 0


def test_one_command_never_takes_anothers_folder(tmp_path: Path) -> None:
    claim_output(tmp_path / "x", "data synth")
    with pytest.raises(ConfigError, match="made by `mmn data synth`"):
        claim_output(tmp_path / "x", "demo")


@pytest.mark.parametrize("where", ["afile", "afile/sub"])
def test_a_file_or_unwritable_path_is_one_line(tmp_path: Path, capsys, where: str) -> None:
    (tmp_path / "afile").write_text("x")
    out = tmp_path / where  # a file; a folder that cannot be created (under a file)
    assert main(["data", "synth", "--rows", "50", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "Traceback" not in err


def test_the_demo_refuses_a_foreign_folder_before_anything_else(tmp_path: Path, capsys) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("mine")
    assert main(["demo", "--out", str(tmp_path), "--rows", "100"]) == 2
    assert "--force" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
