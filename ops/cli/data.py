"""`mmn data synth|profile`: write a synthetic log; profile a log to choose domain columns."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ops.cli.options import add_options, build
from simulator.profile import profile
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="synthesise or profile conversion logs")
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = commands.add_parser(
        "synth", help="write a synthetic log in the CriteoSearchData format with its truth"
    )
    synth.add_argument("--rows", type=int, default=100_000, help="clicks (lines) to write")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    synth.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    synth.add_argument(
        "--full-funnel",
        action="store_true",
        help="also write impressions.tsv: every impression, clicked or not, with p_click",
    )
    model = add_options(synth.add_argument_group("generative model"), SynthConfig, skip=("fields",))
    synth.set_defaults(func=run_synth, options=model)
    prof = commands.add_parser(
        "profile",
        help="rows, time span, sale rate and values per column of a CriteoSearchData file",
    )
    prof.add_argument("file", type=Path, metavar="FILE", help="a CriteoSearchData file")
    prof.add_argument("--top", type=int, default=5, help="top values to show per column")
    prof.add_argument("--limit", type=int, default=None, help="read only the first lines")
    prof.add_argument(
        "--max-distinct", type=int, default=100_000, help="distinct values counted per column"
    )
    prof.set_defaults(func=run_profile)


def run_synth(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = build(args, args.options)
    log = generate(args.rows, seed=args.seed, config=config, full_funnel=args.full_funnel)
    paths = write(log, args.out)
    sales = sum(1 for v in log.columns["Sale"] if v == "1")
    print(
        f"wrote {args.rows:,} rows ({sales / args.rows:.2%} with a sale) in "
        f"{time.perf_counter() - started:.1f}s: " + ", ".join(str(p) for p in paths)
    )
    return 0


def run_profile(args: argparse.Namespace) -> int:
    result = profile(args.file, max_distinct=args.max_distinct, limit=args.limit)
    print("\n".join(result.lines(top=args.top)))
    return 0
