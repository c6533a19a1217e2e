"""`mmn bench offline`: the paper's offline experiment (Table 3 layout) on a CriteoSearchData file."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from model import zoo
from ops.errors import ConfigError
from ops.evaluation.offline import OfflineConfig, load_data, run_offline
from ops.evaluation.table import format_table
from ops.training.optimizers import LR_GRIDS, OPTIMIZERS
from simulator.criteo_search import CriteoSearchConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "offline",
        help="train every model on the first 70%% of a log (time order), CVR AUC per domain on the rest",
    )
    parser.add_argument(
        "--data", type=Path, required=True, metavar="FILE", help="CriteoSearchData file"
    )
    parser.add_argument("--type-field", default=CriteoSearchConfig.type_field)
    parser.add_argument("--scenario-field", default=CriteoSearchConfig.scenario_field)
    parser.add_argument(
        "--models", help="comma-separated names (default: every registered model but mmn_masked)"
    )
    parser.add_argument("--seeds", type=int, default=OfflineConfig.seeds)
    parser.add_argument("--rows", type=int, help="read only the first N lines")
    parser.add_argument("--epochs", type=int, default=OfflineConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=OfflineConfig.batch_size)
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=OfflineConfig.optimizer,
        help="adagrad: PyTorch's; adagrad-tf: TensorFlow's (accumulator 0.1, the paper's)",
    )
    parser.add_argument(
        "--lr", type=float, default=OfflineConfig.lr, help="learning rate (no --lr-grid)"
    )
    parser.add_argument(
        "--lr-grid",
        metavar="A,B,...",
        help="choose each model's learning rate from these on a validation split of the "
        "training rows (the paper's protocol; costs one extra training run per rate); "
        "auto: the optimizer's suggested grid",
    )
    parser.add_argument(
        "--hidden",
        default=",".join(str(w) for w in OfflineConfig.hidden),
        metavar="W,W,...",
        help="tower widths (default: the paper's)",
    )
    parser.add_argument(
        "--buckets", type=int, default=OfflineConfig.buckets, help="hash buckets per field"
    )
    parser.add_argument(
        "--replicates",
        type=int,
        default=OfflineConfig.replicates,
        help="paired bootstrap replicates of each model's interval against mmn (0: none)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> dict:
    names = zoo.names()
    models = (
        tuple(args.models.split(","))
        if args.models
        else tuple(n for n in names if n != "mmn_masked")
    )
    unknown = [m for m in models if m not in names]
    if unknown:
        raise ConfigError(f"--models: unknown {', '.join(unknown)}; registered: {', '.join(names)}")
    if args.seeds < 1 or args.epochs < 1 or args.batch_size < 1:
        raise ConfigError("--seeds, --epochs and --batch-size must be >= 1")
    try:
        if args.lr_grid == "auto":
            lr_grid = LR_GRIDS[args.optimizer]
        else:
            lr_grid = tuple(float(x) for x in args.lr_grid.split(",")) if args.lr_grid else ()
    except ValueError:
        raise ConfigError(
            f"--lr-grid: not a comma-separated list of numbers: {args.lr_grid!r}"
        ) from None
    if any(not lr > 0 for lr in lr_grid):
        raise ConfigError(f"--lr-grid: learning rates must be > 0, got {args.lr_grid!r}")
    try:
        hidden = tuple(int(w) for w in args.hidden.split(","))
    except ValueError:
        raise ConfigError(f"--hidden: not comma-separated widths: {args.hidden!r}") from None
    config = OfflineConfig(
        models=models,
        seeds=args.seeds,
        rows=args.rows,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        lr_grid=lr_grid,
        hidden=hidden,
        buckets=args.buckets,
        replicates=args.replicates,
    )
    search = CriteoSearchConfig(type_field=args.type_field, scenario_field=args.scenario_field)
    started = time.perf_counter()
    data = load_data(args.data, search, config)
    print(f"loaded {len(data):,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    result = run_offline(
        data, config, log=lambda line: print(line, flush=True), on_model=partial(args.json)
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
