"""`mmn join` from the command line: options into the joiner's config; bad values fail in one line."""

from __future__ import annotations

import pytest

from ops.cli import main, parse_command
from ops.cli.join import JoinCommand, joiner_config
from ops.errors import ConfigError, OptionError


def _join(argv: list[str]) -> JoinCommand:
    _, _, options = parse_command(["join", *argv], {})
    return options


def test_options_become_the_joiner_config() -> None:
    args = _join(
        ["--method", "wait", "--observation-window", "2h", "--attribution-window", "7d",
         "--click-window", "15m", "--allowed-lateness", "90", "--batch-size", "64",
         "--batch-span", "30m", "--partitions", "2"]
    )  # fmt: skip
    config = joiner_config(args, "127.0.0.1:1")
    assert config.labels.policy == "wait"
    fnw = joiner_config(_join(["--method", "fnw"]), "127.0.0.1:1")
    assert fnw.labels.observation_window_s == 0  # FNW's own assumption
    defer = joiner_config(_join(["--method", "defer"]), "x:1")
    assert defer.labels.final_copy and defer.labels.policy == "fake-negative"
    assert (config.labels.observation_window_s, config.labels.attribution_window_s) == (
        7200,
        604800,
    )
    assert (config.labels.click_window_s, config.labels.allowed_lateness_s) == (900, 90)
    assert (config.batches.batch_size, config.batches.max_span_s) == (64, 1800)
    assert config.partitions == 2 and config.bootstrap == "127.0.0.1:1"


@pytest.mark.parametrize(
    "argv",
    [
        ["--timeout", "0"],
        ["--observation-window", "2d", "--attribution-window", "1d"],
    ],
)
def test_invalid_options_raise_config_errors(argv: list[str]) -> None:
    # A rule of a config is checked as its options are parsed (OptionError, naming the
    # flag); the command's own (--timeout) when its config is made.
    with pytest.raises((ConfigError, OptionError)):
        joiner_config(_join(argv), "127.0.0.1:1")


def test_a_bad_duration_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["join", "--observation-window", "an hour"])
    assert "not a duration" in capsys.readouterr().err
