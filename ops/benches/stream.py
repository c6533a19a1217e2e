"""`mmn bench stream`: delayed-feedback methods under the streaming protocol (RI-AUC table).

See `ops.research.stream_protocol` for the protocol. Prints a row per model and method: AUC,
PR-AUC, log loss, calibration, mean per-domain AUC (each averaged over the scored days),
the AUCs of p_cvr alone and of p_ctr alone, and RI-AUC.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from ops.benches.offline import partial
from ops.options.bench import BenchOptions
from ops.options.device import DEFAULT_DEVICE, Device, resolve_device
from ops.options.typed import Entry, offered
from ops.research.stream_protocol import StreamConfig, run_stream
from simulator.criteo_search import CriteoSearchConfig, load_columns

COLUMNS = (
    "auc",
    "pr_auc",
    "log_loss",
    "calibration",
    "avg_domain_auc",
    "cvr_only_auc",
    "ctr_only_auc",
    "ri_auc",
    "ri_log_loss",
)


Search = offered(CriteoSearchConfig, only=("type_field", "scenario_field"))
Experiment = offered(StreamConfig, skip=("seed",))


@dataclass(frozen=True, kw_only=True)
class StreamBench(BenchOptions):
    """Pretrain on the first days, then learn each day's delayed labels and score the next
    day: AUC, PR-AUC, log loss, calibration and RI-AUC per model and method."""

    data: Annotated[Path, tyro.conf.arg(metavar="FILE")]
    """CriteoSearchData file"""
    search: Annotated[CriteoSearchConfig, Search]
    experiment: Annotated[StreamConfig, Experiment]
    device: Device = DEFAULT_DEVICE


def format_table(result: dict) -> str:
    """One tab-separated row per model and method, then each model's oracle lead and the
    frozen pretrained model's AUC."""
    lines = ["\t".join(("model", "method", *COLUMNS, "ri_auc_95"))]
    notes = []
    for model, entry in result["models"].items():
        lead = entry.get("oracle_lead")
        for method, figures in entry["methods"].items():
            cells = [_fmt(figures.get(c)) for c in COLUMNS]
            if lead is not None and not lead["significant"]:
                cells[COLUMNS.index("ri_auc")] = "n.s."
            interval = figures.get("ri_auc_interval")
            span = "-" if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]"
            lines.append("\t".join((model, method, *cells, span)))
        if lead is not None:
            lo, hi = lead["interval"]
            verdict = "significant" if lead["significant"] else "not significant: RI-AUC not given"
            notes.append(
                f"{model}: oracle - vanilla AUC {lead['auc']:+.4f} [{lo:+.4f}, {hi:+.4f}] "
                f"(95% bootstrap over days; {verdict})"
            )
        if "frozen" in entry:
            notes.append(
                f"{model}: frozen pretrained model (no stream learning) AUC "
                f"{entry['frozen']['auc']:.4f}"
            )
    return "\n".join([*lines, *notes])


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def run(args: StreamBench) -> dict:
    config: StreamConfig = args.experiment
    search: CriteoSearchConfig = args.search
    device = resolve_device(args.device)
    started = time.perf_counter()
    cols = load_columns(args.data, search, rows=config.rows)
    print(f"loaded {len(cols):,} rows in {time.perf_counter() - started:.0f}s", flush=True)
    result = run_stream(
        cols,
        config,
        log=lambda line: print(line, flush=True),
        on_model=partial(args.json),
        device=device,
    )
    result["rows"] = len(cols)
    result["data"] = str(args.data)
    print(format_table(result))
    return result


ENTRIES = {
    ("bench", "stream"): Entry(
        "pretrain on the first days, then learn each day's delayed labels and score the next "
        "day: AUC, PR-AUC, log loss, calibration and RI-AUC per model and method",
        StreamBench,
        run,
    )
}
