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
from collections.abc import Sequence

from ops.cli.options import Parser, apply_environment
from ops.errors import PROJECT_ERRORS

COMMAND_MODULES = (
    "ops.cli.broker",
    "ops.cli.bench",
    "ops.cli.data",
    "ops.cli.replay",
    "ops.cli.join",
    "ops.cli.train",
    "ops.cli.runs",
    "ops.cli.demo",
    "ops.cli.evaluate",
    "ops.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mmn",
        description="Masked Multi-Domain Network as a streaming online-learning system.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    apply_environment(parser, os.environ)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PROJECT_ERRORS as exc:
        print(f"mmn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
