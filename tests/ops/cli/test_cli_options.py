"""Options derived from config dataclasses: help and defaults everywhere, one-line errors, env."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import pytest
from command_help import help_text, option_texts

from ops.cli import main, parse_command
from ops.cli.main import entries
from ops.errors import OptionError
from ops.options.typed import complete, flags, offered, parse
from streaming.joiner_app import JoinerConfig
from streaming.labels import LabelConfig
from streaming.segments import BatchConfig

COMMANDS = sorted(entries().items())


@pytest.mark.parametrize("path,entry", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help_and_shows_its_default(path, entry) -> None:
    texts = option_texts(help_text(path, entry))
    for flag in flags(entry.options):
        assert flag in texts, f"mmn {' '.join(path)}: {flag} not in its --help"
        shown = texts[flag]
        assert "(default: " in shown or "(required)" in shown, f"{flag}: {shown!r}"
        words = shown.split("(default: ")[0].replace(flag, "")
        assert len(words.split()) >= 2, f"mmn {' '.join(path)} {flag} has no help: {shown!r}"


def test_a_rule_of_the_config_is_reported_with_the_option_name(capsys) -> None:
    assert main(["join", "--bootstrap", "127.0.0.1:1", "--batch-span", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--batch-span must be >= 1 second" in err[0]


def test_a_usage_error_is_one_line_and_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", "--run", "r", "--lr", "fast"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mmn train: error: argument --lr: 'fast' is neither a number nor auto"]


@dataclasses.dataclass(frozen=True)
class _Windows:
    labels: Annotated[LabelConfig, offered(LabelConfig)]
    batches: Annotated[BatchConfig, offered(BatchConfig)]


def test_defaults_come_from_the_config_and_durations_parse() -> None:
    options = parse(_Windows, ["--attribution-window", "7d", "--batch-span", "90m"], "x", {})
    assert options.labels == LabelConfig(attribution_window_s=7 * 86400)
    assert options.batches == BatchConfig(max_span_s=5400)
    assert parse(_Windows, [], "x", {}).labels == LabelConfig()


@dataclasses.dataclass(frozen=True)
class _Partitions:
    joiner: Annotated[dict[str, Any], offered(JoinerConfig, only=("partitions",))]


def test_given_fields_override_and_errors_name_the_flag() -> None:
    options = parse(_Partitions, ["--partitions", "0"], "x", {})
    mark = offered(JoinerConfig, only=("partitions",))
    with pytest.raises(OptionError, match="--partitions must be >= 1"):
        complete(mark, options.joiner, bootstrap="b")
    assert complete(mark, options.joiner, bootstrap="b", partitions=3).partitions == 3


def test_environment_variables_set_defaults_and_the_command_line_wins() -> None:
    environ = {"MMN_PARTITIONS": "6", "MMN_RUN": "from-env"}
    _, _, join = parse_command(["join"], environ)
    assert join.joiner.partitions == 6
    _, _, join = parse_command(["join", "--partitions", "2"], environ)
    assert join.joiner.partitions == 2
    _, _, train = parse_command(["train"], environ)
    assert train.run == "from-env"  # --run no longer required


def test_a_bad_environment_value_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        parse_command(["join"], {"MMN_PARTITIONS": "many"})
    assert stop.value.code == 2
    assert "MMN_PARTITIONS='many'" in capsys.readouterr().err
