"""`mmn demo`: the whole pipeline as supervised `mmn` processes, with a live view.

    mmn demo [--data FILE] [--rows N] [--seed S] [--arms mmn,esmm] [--out DIR]

See ops.cli.demo.pipeline for what runs, in which order, and how it stops.
"""

from __future__ import annotations

import argparse

from ops.cli.demo.pipeline import run_demo
from ops.cli.demo.plan import DemoConfig
from ops.options.configs import add_options, build


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole pipeline on a synthetic log, live, ending with the A/B report"
    )
    options = add_options(parser, DemoConfig, only=("data", "rows", "seed", "arms", "out", "force"))
    parser.set_defaults(func=run, options=options)


def run(args: argparse.Namespace) -> int:
    return run_demo(build(args, args.options))
