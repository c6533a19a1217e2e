"""Options derived from config dataclasses: help and defaults everywhere, one-line errors, env."""

from __future__ import annotations

import argparse

import pytest

from ops.cli import build_parser, main
from ops.errors import ConfigError
from ops.options.configs import add_options, apply_environment, build, class_default
from streaming.joiner_app import JoinerConfig
from streaming.labels import LabelConfig
from streaming.segments import BatchConfig


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found.extend(_commands(sub, (*path, name)))
    return found


COMMANDS = _commands(build_parser())


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_has_help_and_shows_its_default(path, parser) -> None:
    text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flag = max(action.option_strings, key=len)
        assert action.help, f"mmn {' '.join(path)} {flag} has no help"
        shown = parser._get_formatter()._get_help_string(action) or ""
        assert "default" in shown or "(required)" in shown, f"{flag}: {shown!r}"
        assert flag in text


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


def test_defaults_come_from_the_config_and_durations_parse() -> None:
    parser = argparse.ArgumentParser()
    labels = add_options(parser, LabelConfig)
    batches = add_options(parser, BatchConfig, flags={"max_span_s": "batch-span"})
    args = parser.parse_args(["--attribution-window", "7d", "--batch-span", "90m"])
    assert build(args, labels) == LabelConfig(attribution_window_s=7 * 86400)
    assert build(args, batches) == BatchConfig(max_span_s=5400)
    assert args.observation_window == class_default(LabelConfig, "observation_window_s")


def test_given_fields_override_and_errors_name_the_flag() -> None:
    parser = argparse.ArgumentParser()
    joiner = add_options(parser, JoinerConfig, only=("partitions",))
    args = parser.parse_args(["--partitions", "0"])
    with pytest.raises(ConfigError, match="--partitions must be >= 1"):
        build(args, joiner, bootstrap="b")
    assert build(args, joiner, bootstrap="b", partitions=3).partitions == 3


def test_environment_variables_set_defaults_and_the_command_line_wins() -> None:
    parser = build_parser()
    apply_environment(parser, {"MMN_PARTITIONS": "6", "MMN_RUN": "from-env"})
    args = parser.parse_args(["join"])
    assert args.partitions == 6
    assert parser.parse_args(["join", "--partitions", "2"]).partitions == 2
    assert parser.parse_args(["train"]).run == "from-env"  # --run no longer required


def test_a_bad_environment_value_is_a_usage_error(capsys) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as stop:
        apply_environment(parser, {"MMN_PARTITIONS": "many"})
    assert stop.value.code == 2
    assert "MMN_PARTITIONS='many'" in capsys.readouterr().err
