"""`mmn data synth|profile`: write a synthetic log; profile a log to choose domain columns."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ops.cli.outputs import claim_output
from ops.options.typed import Entry, offered
from ops.options.values import Count, CountOrZero, OptionalCount
from simulator.profile import profile
from simulator.synth import generate, write
from simulator.synth_model import SynthConfig

Model = offered(SynthConfig, skip=("fields",))


@dataclass(frozen=True, kw_only=True)
class Synth:
    """Write a synthetic log in the CriteoSearchData format with its truth."""

    out: Annotated[Path, tyro.conf.arg(metavar="DIR")]
    """output folder"""
    rows: Count = 100_000
    """clicks (lines) to write"""
    seed: CountOrZero = 0
    """random seed (same seed, same files)"""
    force: bool = False
    """write into a --out folder that holds other files (existing outputs are replaced)"""
    full_funnel: bool = False
    """also write impressions.tsv: every impression, clicked or not, with p_click"""
    model: Annotated[SynthConfig, Model]


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Rows, time span, sale rate and values per column of a CriteoSearchData file."""

    file: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="FILE")]]
    """a CriteoSearchData file"""
    top: Count = 5
    """top values to show per column"""
    limit: OptionalCount = None
    """read only the first lines"""
    max_distinct: Count = 100_000
    """distinct values counted per column"""


def run_synth(args: Synth) -> int:
    claim_output(args.out, "data synth", force=args.force)
    started = time.perf_counter()
    log = generate(args.rows, seed=args.seed, config=args.model, full_funnel=args.full_funnel)
    paths = write(log, args.out)
    sales = sum(1 for v in log.columns["Sale"] if v == "1")
    print(
        f"wrote {args.rows:,} rows ({sales / args.rows:.2%} with a sale) in "
        f"{time.perf_counter() - started:.1f}s: " + ", ".join(str(p) for p in paths)
    )
    return 0


def run_profile(args: Profile) -> int:
    result = profile(args.file, max_distinct=args.max_distinct, limit=args.limit)
    print("\n".join(result.lines(top=args.top)))
    return 0


ENTRIES = {
    ("data", "synth"): Entry(
        "write a synthetic log in the CriteoSearchData format with its truth", Synth, run_synth
    ),
    ("data", "profile"): Entry(
        "rows, time span, sale rate and values per column of a CriteoSearchData file",
        Profile,
        run_profile,
    ),
}
