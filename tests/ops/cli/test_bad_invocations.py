"""Every bad invocation exits 2 with one line naming the option, and never a traceback.

The table holds the invocations issue 11 found, and every numeric option of every command
is tried with a negative value (and a float one with NaN): each must be refused by its
option's rule before the command does anything. Commands that would reach a broker are
pointed at a port where none listens, so an accepted bad value shows up as another error.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated

import pytest

from ops.cli import main
from ops.cli.main import entries
from ops.options.typed import flags
from simulator.synth import generate, write

NOWHERE = "127.0.0.1:1"

# What each command needs besides the option under test ({log}, {tmp}: filled in per test).
BASE: dict[tuple[str, ...], list[str]] = {
    ("bench", "offline"): ["--data", "{log}"],
    ("bench", "stream"): ["--data", "{log}"],
    ("data", "synth"): ["--out", "{tmp}/synth"],
    ("data", "profile"): ["{log}"],
    ("replay",): ["--data", "{log}", "--bootstrap", NOWHERE],
    ("join",): ["--bootstrap", NOWHERE],
    ("train",): ["--run", "r", "--bootstrap", NOWHERE, "--db", "sqlite:///{tmp}/r.db"],
    ("snapshots", "prune"): ["r", "--db", "sqlite:///{tmp}/r.db"],
    ("snapshots", "list"): ["r", "--db", "sqlite:///{tmp}/r.db"],
    ("demo",): ["--out", "{tmp}/demo"],
    ("report", "show"): ["e", "--db", "sqlite:///{tmp}/r.db"],
    ("report", "compare"): ["e", "f", "--db", "sqlite:///{tmp}/r.db"],
    ("evaluate",): [
        "--experiment",
        "e",
        "--arm",
        "control=r",
        "--bootstrap",
        NOWHERE,
        "--db",
        "sqlite:///{tmp}/r.db",
    ],
}

# Options whose negative values mean something (a rotation either way).
NEGATIVE_IS_FINE = {("data", "synth", "--drift-angle")}

TRAIN = ["train", "--bootstrap", NOWHERE, "--db", "sqlite:///{tmp}/r.db"]

# Issue 11's findings 7-9, as the user typed them: (argv, the option the line must name).
FOUND = [
    ([*TRAIN, "--run", "r", "--lr", "-1"], "--lr"),
    ([*TRAIN, "--run", "r", "--snapshot-every", "-5"], "--snapshot-every"),
    ([*TRAIN, "--run", "r", "--snapshot-every-event-time", "0"], "--snapshot-every-event-time"),
    ([*TRAIN, "--run", "r", "--idle-timeout", "-1"], "--idle-timeout"),
    ([*TRAIN, "--run", "../../etc/evil"], "--run"),
    (
        ["evaluate", "--experiment", "../x", "--arm", "control=r", "--bootstrap", NOWHERE],
        "--experiment",
    ),
    ([*TRAIN, "--run", "r", "--metrics-port", "70000"], "--metrics-port"),
    (["broker", "--port", "70000"], "--port"),
    (["broker", "--port", "-1"], "--port"),
    (["join", "--bootstrap", NOWHERE, "--batch-span", "0"], "--batch-span"),
    (["join", "--bootstrap", NOWHERE, "--observation-window", "-1h"], "--observation-window"),
    (["replay", "--data", "{log}", "--bootstrap", NOWHERE, "--partitions", "0"], "--partitions"),
    (["data", "synth", "--out", "{log}"], "--out"),  # an existing file
    (["data", "synth", "--out", "/proc/no/such/dir"], "--out"),  # cannot be created
    (["snapshots", "prune", "../x", "--db", "sqlite:///{tmp}/r.db"], "RUN"),
    # Issue 19, finding 7: mmn join's worker logs in a file, a read-only folder (one even
    # root cannot write), a folder that cannot be created.
    (["join", "--bootstrap", NOWHERE, "--log-dir", "{log}"], "--log-dir"),
    (["join", "--bootstrap", NOWHERE, "--log-dir", "/proc/self"], "--log-dir"),
    (["join", "--bootstrap", NOWHERE, "--log-dir", "/proc/no/such/dir"], "--log-dir"),
    # Finding 7 again: commands that only read never create a registry at a mistyped --db.
    (["report", "show", "e", "--db", "sqlite:///{tmp}/typo.db"], "no registry at"),
    (["report", "compare", "e", "f", "--db", "sqlite:///{tmp}/typo.db"], "no registry at"),
    (["report", "delete", "e", "--db", "sqlite:///{tmp}/typo.db"], "no registry at"),
    # Files a command writes, checked before it works: a folder, a read-only folder (one
    # even root cannot write), a file where a folder is expected.
    *[
        ([*argv, option, bad], option)
        for argv, option in (
            (["bench", "offline", "--data", "{log}"], "--json"),
            (["report", "show", "e", "--db", "sqlite:///{tmp}/r.db"], "--html"),
            (
                ["evaluate", "--experiment", "e", "--arm", "control=r", "--bootstrap", NOWHERE],
                "--export-predictions",
            ),
        )
        for bad in ("{tmp}", "/proc/self/x.out", "{log}/x.out")
    ],
    # Finding 3: a mistyped arm is refused at start, naming it.
    (
        [
            "evaluate",
            "--experiment",
            "e",
            "--arm",
            "control=no-such-run",
            "--bootstrap",
            NOWHERE,
            "--db",
            "sqlite:///{tmp}/r.db",
        ],
        "--arm control=no-such-run",
    ),  # fmt: skip
]


def _numbers(hint: object) -> set[type]:
    """The number types an option's type holds ({int} for `int | None`), or {} when other
    values are possible too (a word, a date, a list)."""
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    kinds = set(typing.get_args(hint)) - {type(None)} or {hint}
    return kinds if kinds <= {int, float} else set()


def _commands():
    for path, entry in entries().items():
        for flag, hint in flags(entry.options).items():
            kinds = _numbers(hint)
            if not kinds or hint is bool:
                continue
            bad = [] if (*path, flag) in NEGATIVE_IS_FINE else ["-1"]
            bad += ["nan"] if float in kinds else []
            for value in bad:
                yield path, flag, value


NUMERIC = sorted(set(_commands()))


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("log")
    write(generate(200, seed=1), folder)
    return folder / "CriteoSearchData"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # usage errors
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


def _fill(argv: list[str], log: Path, tmp: Path) -> list[str]:
    return [a.format(log=log, tmp=tmp) for a in argv]


def _assert_one_line(code: int, err: str, option: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert option in lines[0], lines[0]


@pytest.mark.parametrize("argv,option", FOUND, ids=[" ".join(a) for a, _ in FOUND])
def test_each_bad_invocation_found_is_one_line(argv, option, log, tmp_path, capsys) -> None:
    code, err = _run(_fill(argv, log, tmp_path), capsys)
    _assert_one_line(code, err, option)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize(
    "path,flag,value", NUMERIC, ids=[f"{' '.join(p)} {f}={v}" for p, f, v in NUMERIC]
)
def test_every_numeric_option_refuses_a_bad_value(path, flag, value, log, tmp_path, capsys):
    argv = [*path, *_fill(BASE.get(path, []), log, tmp_path), f"{flag}={value}"]
    code, err = _run(argv, capsys)
    _assert_one_line(code, err, flag)


@pytest.mark.parametrize(
    "folder",
    ["{log}", "{log}/below", "/proc/self/snapshots"],
    ids=["file", "under a file", "read-only"],
)
def test_a_snapshot_folder_that_cannot_be_one_is_refused_before_the_registry(
    folder, log, tmp_path, capsys
) -> None:
    argv = _fill([*TRAIN, "--run", "r", "--snapshot-dir", folder], log, tmp_path)
    code, err = _run(argv, capsys)
    _assert_one_line(code, err, "--snapshot-dir")
    assert not (tmp_path / "r.db").exists()  # refused before the registry was created


def test_an_empty_log_is_one_line_in_the_offline_bench(tmp_path, capsys) -> None:
    empty = tmp_path / "CriteoSearchData"
    empty.touch()
    code, err = _run(["bench", "offline", "--data", str(empty)], capsys)
    _assert_one_line(code, err, str(empty))


# Every path a command reads or writes, given what cannot serve: (argv, text the line names).
PATHS = [
    (["replay", "--data", "{tmp}/missing", "--bootstrap", NOWHERE], "{tmp}/missing"),
    (["bench", "stream", "--data", "{tmp}/missing"], "{tmp}/missing"),
    (["bench", "offline", "--data", "{tmp}/missing"], "{tmp}/missing"),
    (["data", "profile", "{tmp}/missing"], "{tmp}/missing"),
    (["data", "synth", "--out", "{log}"], "--out"),
    (["demo", "--out", "{log}"], "--out"),
    (["demo", "--data", "{tmp}/missing"], "--data"),
    (["join", "--bootstrap", NOWHERE, "--log-dir", "{log}"], "--log-dir"),
    (["bench", "stream", "--data", "{log}", "--json", "{tmp}"], "--json"),
    (["report", "show", "e", "--db", "sqlite:///{tmp}/missing.db"], "{tmp}/missing.db"),
    (["runs", "list", "--db", "sqlite:///{tmp}/missing.db"], "{tmp}/missing.db"),
    ([*TRAIN[:1], "--run", "r", "--bootstrap", NOWHERE, "--db", "sqlite:///{log}/x.db"], "x.db"),
]


@pytest.mark.parametrize("argv,text", PATHS, ids=[" ".join(a) for a, _ in PATHS])
def test_every_path_that_cannot_serve_is_one_line(argv, text, log, tmp_path, capsys) -> None:
    code, err = _run(_fill(argv, log, tmp_path), capsys)
    _assert_one_line(code, err, text.format(log=log, tmp=tmp_path))
    assert not (tmp_path / "missing.db").exists()
