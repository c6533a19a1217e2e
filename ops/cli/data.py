"""`mmn data synth|profile`: write a synthetic log; profile a log to choose domain columns."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ops.cli.outputs import claim_output
from ops.options.configs import add_options, at_least, build
from simulator.profile import profile
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="synthesise or profile conversion logs")
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = commands.add_parser(
        "synth", help="write a synthetic log in the CriteoSearchData format with its truth"
    )
    synth.add_argument("--rows", type=at_least(1), default=100_000, help="clicks (lines) to write")
    synth.add_argument(
        "--seed", type=at_least(0), default=0, help="random seed (same seed, same files)"
    )
    synth.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    synth.add_argument(
        "--force",
        action="store_true",
        help="write into a --out folder that holds other files (existing outputs are replaced)",
    )
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
    prof.add_argument("--top", type=at_least(1), default=5, help="top values to show per column")
    prof.add_argument("--limit", type=at_least(1), default=None, help="read only the first lines")
    prof.add_argument(
        "--max-distinct",
        type=at_least(1),
        default=100_000,
        help="distinct values counted per column",
    )
    prof.set_defaults(func=run_profile)


def run_synth(args: argparse.Namespace) -> int:
    claim_output(args.out, "data synth", force=args.force)
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
