"""`mmn bench offline`: the paper's offline experiment (Table 3 layout) on a CriteoSearchData file."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from model import zoo
from ops.evaluation.offline import OfflineConfig, offline_data, run_offline
from ops.evaluation.table import format_table
from ops.options.bench import BenchOptions
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry, offered
from simulator.criteo_search import CriteoSearchConfig, load_columns
from simulator.synth import truth_of

Search = offered(CriteoSearchConfig, only=("type_field", "scenario_field"))
Experiment = offered(
    OfflineConfig, defaults={"models": tuple(n for n in zoo.names() if n != "mmn_masked")}
)


@dataclass(frozen=True, kw_only=True)
class OfflineBench(BenchOptions):
    """Train every model on the first 70% of a log (time order), CVR AUC per domain on the
    rest."""

    data: Annotated[Path, tyro.conf.arg(metavar="FILE")]
    """CriteoSearchData file"""
    search: Annotated[CriteoSearchConfig, Search]
    experiment: Annotated[OfflineConfig, Experiment]
    device: Device = DEFAULT_DEVICE


def run(args: OfflineBench) -> dict:
    config: OfflineConfig = args.experiment
    search: CriteoSearchConfig = args.search
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


ENTRIES = {
    ("bench", "offline"): Entry(
        "train every model on the first 70% of a log (time order), CVR AUC per domain on the rest",
        OfflineBench,
        run,
    )
}
