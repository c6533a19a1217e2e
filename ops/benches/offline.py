"""`mmn bench offline`: the paper's offline experiment (Table 3 layout) on a CriteoSearchData file."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from model import zoo
from ops.evaluation.offline import OfflineConfig, offline_data, run_offline
from ops.evaluation.table import format_table
from ops.options.configs import add_options, build
from ops.options.device import add_device_option, resolve_device
from simulator.criteo_search import CriteoSearchConfig, load_columns
from simulator.synth import truth_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offline",
        help="train every model on the first 70%% of a log (time order), CVR AUC per domain on the rest",
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="FILE", help="CriteoSearchData file"
    )
    search = add_options(parser, CriteoSearchConfig, only=("type_field", "scenario_field"))
    experiment = add_options(
        parser,
        OfflineConfig,
        defaults={"models": tuple(n for n in zoo.names() if n != "mmn_masked")},
    )
    add_device_option(parser)
    parser.set_defaults(func=run, options=(search, experiment))


def run(args: argparse.Namespace) -> dict:
    search_options, experiment_options = args.options
    config = build(args, experiment_options)
    search = build(args, search_options)
    device = resolve_device(args.device)
    started = time.perf_counter()
    cols = load_columns(args.data, search, rows=config.rows)
    p_true = truth_of(args.data, cols.impression_id)
    data = offline_data(cols, config, p_true=p_true, source=str(args.data))
    print(f"loaded {len(data):,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    result = run_offline(
        dataclasses.replace(data, device=device),
        config,
        log=lambda line: print(line, flush=True),
        on_model=partial(args.json),
    )
    print(format_table(result))
    return result


def partial(path: Path | None):
    """Writes the result so far to path (with "partial": true) after each model; None: nothing."""

    def write(result: dict) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                json.dumps({**result, "partial": True}, indent=2, sort_keys=True) + "\n"
            )

    return write
