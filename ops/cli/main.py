"""The `mmn` command: one entry point whose sub-commands live in `ops.cli.*`.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func` (taking the parsed namespace, returning an exit code). Errors of the project are
printed as one line and exit 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence

from ops.errors import PROJECT_ERRORS
from ops.options.configs import Parser, apply_environment

# Every command, the module that registers it and its one-line help: `mmn --help` lists
# them without importing any command module, and `mmn X` imports X's module alone (the
# others pull in torch, Faust and SQLAlchemy: seconds of CPU for every process).
# tests/ops/cli/test_cli_options.py checks that each help here is the one its module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": (
        "ops.cli.broker",
        "run the embedded Kafka-protocol broker (Tansu) in the foreground",
    ),
    "bench": ("ops.cli.bench", "benchmarks (ratios measured in one run)"),
    "data": ("ops.cli.data", "synthesise or profile conversion logs"),
    "replay": ("ops.cli.replay", "replay a conversion log as impressions, clicks and conversions"),
    "join": (
        "ops.cli.join",
        "label impressions/clicks/conversions in event time; emit mini-batches",
    ),
    "train": (
        "ops.cli.train",
        "the online trainer: learn from the minibatches topic, publish snapshots",
    ),
    "runs": ("ops.cli.runs", "training runs in the registry"),
    "snapshots": ("ops.cli.runs", "published snapshots of a run"),
    "demo": (
        "ops.cli.demo",
        "the whole pipeline on a synthetic log, live, ending with the A/B report",
    ),
    "evaluate": (
        "ops.cli.evaluate",
        "score arms with their serving snapshots against final labels (A/B)",
    ),
    "report": ("ops.cli.report", "A/B experiment reports"),
}
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The `mmn` parser with every command built in full (None) or only those named; the
    others are listed with their help."""
    parser = Parser(
        prog="mmn",
        description="Masked Multi-Domain Network as a streaming online-learning system.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = COMMAND_MODULES if commands is None else {COMMANDS[c][0] for c in commands}
    for module in COMMAND_MODULES:
        if module in wanted:
            importlib.import_module(module).register(subparsers)
    for name, (_, text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=text, add_help=False)
    apply_environment(parser, os.environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The command is the first word; `mmn --help` and a mistyped command need none built.
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser([command] if command in COMMANDS else []).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PROJECT_ERRORS as exc:
        print(f"mmn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
