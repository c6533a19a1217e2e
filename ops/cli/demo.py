"""`mmn demo`: the whole pipeline as supervised `mmn` processes, with a live view.

    mmn demo [--data FILE] [--rows N] [--seed S] [--arms mmn,esmm] [--out DIR]

See ops.demo.pipeline for what runs, in which order, and how it stops.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ops.demo.pipeline import run_demo
from ops.demo.plan import DemoConfig


def _arms(text: str) -> tuple[str, ...]:
    return tuple(arm.strip() for arm in text.split(",") if arm.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = DemoConfig()
    parser = subparsers.add_parser(
        "demo", help="the whole pipeline on a synthetic log, live, ending with the A/B report"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="FILE",
        help="a Criteo search log to replay (default: synthesise one)",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help=f"rows of the synthetic log (default {defaults.rows:,})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"seed of the log and models (default {defaults.seed})",
    )
    parser.add_argument(
        "--arms",
        type=_arms,
        default=None,
        metavar="MODEL,MODEL",
        help=f"one trainer per model; the first is the control (default {','.join(defaults.arms)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the run folder; a previous demo's is emptied first (default {defaults.out})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    given: dict[str, Any] = {
        key: value
        for key in ("data", "rows", "seed", "arms", "out")
        if (value := getattr(args, key)) is not None
    }
    return run_demo(DemoConfig(**given))
