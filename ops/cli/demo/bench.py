"""`mmn bench pipeline`: the demo's pipeline run to its end for ops.benches.pipeline to measure.

The components start as in `mmn demo` (ops.cli.demo.pipeline.start_pipeline), under the
same supervisor; the live view shows them while they run, and each process's peak RSS is
sampled at every tick. Once the finite ones have finished the broker is stopped, and every
child has been reaped here, its CPU seconds noted. No report and no pruning follow: they
are not the streaming pipeline.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from ops.benches.pipeline import PeakRss, count_events, figures, model_step_us, print_table
from ops.cli.demo.live_view import LiveView
from ops.cli.demo.pipeline import (
    pipeline_supervisor,
    prepare_folder,
    sigterm_interrupts,
    start_pipeline,
    synthesise,
    view_rows,
)
from ops.cli.demo.plan import DemoConfig, RunFolder
from ops.cli.demo.supervisor import ComponentFailed, Supervisor
from ops.options.bench import BenchOptions
from ops.options.typed import Entry, offered
from ops.store.database import open_registry

Settings = offered(
    DemoConfig,
    only=("rows", "seed", "arms", "out", "timeout_s", "force"),
    defaults={"out": Path("out/bench-pipeline")},
)


@dataclass(frozen=True, kw_only=True)
class PipelineBench(BenchOptions):
    """CPU-us per click of each process of the demo's pipeline vs the model step."""

    demo: Annotated[DemoConfig, Settings]


def running(supervisor: Supervisor) -> dict[str, int]:
    """name -> PID of the children still running."""
    return {
        name: child.process.pid
        for name, child in supervisor.children.items()
        if child.process.returncode is None
    }


def run_pipeline(
    config: DemoConfig, folder: RunFolder, data: Path
) -> tuple[dict[str, float | None], PeakRss]:
    """The pipeline to its end, the broker stopped last: each child's CPU seconds, the peaks."""
    peaks = PeakRss()
    with sigterm_interrupts(), pipeline_supervisor(folder) as supervisor:
        try:
            start_pipeline(supervisor, config, folder, data)
            view = LiveView(supervisor, view_rows(config), stream=sys.stdout)
            finite = [name for name, child in supervisor.children.items() if not child.daemon]

            def tick() -> None:
                peaks.sample(running(supervisor))
                view.tick()

            supervisor.wait(finite, timeout_s=config.timeout_s, tick=tick)
            peaks.sample(running(supervisor))
            for name in supervisor.children:
                supervisor.stop_child(name)
        except ComponentFailed as exc:
            print(f"\n{exc.child.name} failed; the end of {exc.child.log_path}:", file=sys.stderr)
            print(exc.child.tail(), file=sys.stderr)
            raise
    return {name: child.cpu_s for name, child in supervisor.children.items()}, peaks


def run(command: PipelineBench) -> dict:
    config = command.demo
    folder = RunFolder(config.out.resolve())  # absolute: the children work in it
    prepare_folder(folder.root, command="bench pipeline", force=config.force)
    data = synthesise(config, folder)
    clicks, events = count_events(data)
    print(f"synthetic log: {config.rows:,} rows in {data}; measuring the model steps")
    step_us = model_step_us(config.arms, config.buckets)
    open_registry(folder.db)  # migrated once here: trainers starting together would race
    cpu_s, peaks = run_pipeline(config, folder, data)
    result = figures(cpu_s, peaks, clicks, events, step_us)
    print_table(result)
    return result


ENTRIES = {
    ("bench", "pipeline"): Entry(
        "CPU-us per click of each process of the demo's pipeline vs the model step",
        PipelineBench,
        run,
    )
}
