"""`mmn bench ...`: benchmarks that print ratios measured in one run (and `--json FILE`).

Each benchmark lives in a module of `ops.benches` exposing `register(subparsers)`; its
parser gets `--json FILE` here, and its `func` returns a dict of figures that is written
there. `bench pipeline` registers from ops.cli.demo.bench, which runs the demo's
supervised processes (benches may not import the CLI's demo) for ops.benches.pipeline to
measure.
"""

from __future__ import annotations

import argparse
import importlib
import json

from ops.cli.outputs import output_file

BENCH_MODULES: tuple[str, ...] = (
    "ops.benches.replay",
    "ops.benches.join",
    "ops.benches.offline",
    "ops.benches.model",
    "ops.benches.train",
    "ops.benches.evaluate",
    "ops.benches.stream",
    "ops.cli.demo.bench",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks (ratios measured in one run)")
    benches = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name in BENCH_MODULES:
        importlib.import_module(name).register(benches)
    for bench_parser in benches.choices.values():
        bench_parser.add_argument(
            "--json", type=output_file, metavar="FILE", help="also write the figures here"
        )
        bench_parser.set_defaults(func=_run_and_write(bench_parser.get_default("func")))


def _run_and_write(func):
    def run(args: argparse.Namespace) -> int:
        figures = func(args)
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
            print(f"figures written to {args.json}")
        return 0

    return run
