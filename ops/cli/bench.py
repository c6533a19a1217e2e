"""`mmn bench ...`: benchmarks that print ratios measured in one run (and `--json FILE`).

Each benchmark lives in a module of `ops.benches` exposing ENTRIES, like a command's; its
options derive from ops.options.bench.BenchOptions, whose `--json FILE` is written here
with the dict of figures its run returns. `bench pipeline` is declared in
ops.cli.demo.bench, which runs the demo's supervised processes (benches may not import the
CLI's demo) for ops.benches.pipeline to measure.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from typing import Any

from ops.options.bench import BenchOptions
from ops.options.typed import Entry

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


def _run_and_write(run: Callable[[Any], dict]) -> Callable[[BenchOptions], int]:
    def run_bench(options: BenchOptions) -> int:
        figures = run(options)
        if options.json is not None:
            options.json.parent.mkdir(parents=True, exist_ok=True)
            options.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
            print(f"figures written to {options.json}")
        return 0

    return run_bench


def _entries() -> dict[tuple[str, ...], Entry]:
    found: dict[tuple[str, ...], Entry] = {}
    for name in BENCH_MODULES:
        for path, entry in importlib.import_module(name).ENTRIES.items():
            found[path] = dataclasses.replace(entry, run=_run_and_write(entry.run))
    return found


ENTRIES = _entries()
