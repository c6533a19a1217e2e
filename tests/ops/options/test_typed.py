"""Typed commands on tyro: the flags users' scripts name stay, durations read and show their
unit, `MMN_*` variables set defaults, and every usage error is one line with exit 2."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path
from typing import Annotated

import pytest

from ops.cli.main import entries
from ops.options.typed import flags, offered, parse
from ops.options.values import OptionalSeconds
from streaming.labels import LabelConfig
from streaming.segments import BatchConfig

# Every command's flags as the argparse parser declared them before tyro (issue 22).
BEFORE = json.loads((Path(__file__).parent / "flags_before_tyro.json").read_text())
# Removed on purpose since: the evaluator reads the joiner's label windows from the mini-batches.
REMOVED = {"evaluate": {"--observation-window", "--attribution-window"}}


def test_every_command_keeps_the_flags_it_had() -> None:
    now = {" ".join(path): sorted(flags(entry.options)) for path, entry in entries().items()}
    assert now == {
        name: sorted(set(had) - REMOVED.get(name, set())) for name, had in BEFORE.items()
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Command:
    """A command for these tests."""

    labels: Annotated[LabelConfig, offered(LabelConfig, skip=("policy", "final_copy"))]
    batches: Annotated[BatchConfig, offered(BatchConfig)]
    timeout: OptionalSeconds = None
    """give up after this long"""
    until_end: bool = False
    """stop at the end"""


def _help() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        parse(_Command, ["--help"], "mmn x", {})
    assert stop.value.code == 0
    return out.getvalue()


def test_config_fields_become_flags_without_their_unit_suffix() -> None:
    assert set(flags(_Command)) == {
        "--observation-window", "--attribution-window", "--click-window",
        "--allowed-lateness", "--max-ahead", "--batch-size", "--batch-span",
        "--max-message-bytes", "--timeout", "--until-end",
    }  # fmt: skip


def test_durations_read_units_and_help_shows_them() -> None:
    options = parse(_Command, ["--observation-window", "2h", "--timeout", "15m"], "mmn x", {})
    assert (options.labels.observation_window_s, options.timeout) == (7200, 900)
    text = " ".join(_help().split())
    assert "(default: 30d)" in text and "(default: 1h)" in text and "(default: none)" in text


@pytest.mark.parametrize(
    "argv,line",
    [
        (["--batch-span", "2x"], "mmn x: error: argument --batch-span: '2x' is not a duration"),
        (["--batch-size", "many"], "mmn x: error: argument --batch-size: invalid literal"),
        (["--bogus"], "mmn x: error: unrecognized arguments: --bogus"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv, line, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        parse(_Command, argv, "mmn x", {})
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_environment_variables_are_read_and_the_command_line_wins(capsys) -> None:
    environ = {"MMN_BATCH_SPAN": "15m", "MMN_UNTIL_END": "yes"}
    options = parse(_Command, [], "mmn x", environ)
    assert (options.batches.max_span_s, options.until_end) == (900, True)
    assert parse(_Command, ["--batch-span", "1h"], "mmn x", environ).batches.max_span_s == 3600
    with pytest.raises(SystemExit):
        parse(_Command, [], "mmn x", {"MMN_TIMEOUT": "soon"})
    assert "environment variable MMN_TIMEOUT='soon'" in capsys.readouterr().err
