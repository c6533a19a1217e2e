"""`mmn bench pipeline`: what each process of the demo's pipeline costs per click, against
the model's own step, measured in one run.

It runs the pipeline of `mmn demo` (ops.cli.demo: the embedded broker, the replay at full
speed, the joiner, a trainer per arm, the shadow evaluator) on a synthetic log of `--rows`
rows, and reads each process's own figures: its CPU seconds (user + system) as the kernel
accounted them when it was reaped (`wait4`, ops.cli.demo.supervisor.Child.cpu_s), and its
peak RSS (`PeakRss`). The broker, which runs until stopped, is stopped and reaped once the
others have finished. This module measures and reports; ops.cli.demo.bench runs the
pipeline with the demo's supervisor and registers the command.

Per component: CPU-us per click (every row of the log is one click) and per event (the
impressions, clicks and conversions the replay sends), peak RSS in MB; then their totals.
A component's figures include the processes it starts and reaps: the joiner's workers,
the broker's Tansu (started by `mmn broker`).

The model-step cost is `mmn bench train`'s in-memory figure for each arm
(ops.benches.train.memory_examples_per_s, on one torch thread as the demo's trainers run),
measured before the pipeline starts: every click is one example for each arm, so the model
step per click is the sum over the arms of their us per example. `ratio` is the total
divided by it (the target of issue 20: <= 3).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ops.errors import OpsError
from simulator.sources import open_source
from streaming.segments import BatchConfig

STEP_BATCHES = 20  # mini-batches of the model-step measurement per arm
STEP_ROUNDS = 3  # their timed shares, after a warm-up share


def count_events(data: Path) -> tuple[int, int]:
    """(clicks, events) the replay sends for the log: events are impressions, clicks and
    conversions."""
    clicks = events = 0
    for record in open_source("criteo-search", data).rows():
        clicked = record.click_ts is not None
        clicks += clicked
        events += 1 + clicked + (record.conversion_ts is not None)
    return clicks, events


def model_step_us(arms: Sequence[str], buckets: int) -> dict[str, float]:
    """us per example of each arm's model step, `mmn bench train`'s in-memory figure."""
    import torch

    from ops.benches.train import learner_config, memory_examples_per_s, synthetic_minibatches

    torch.set_num_threads(1)  # as the demo's trainers (`--threads 1`)
    batches = synthetic_minibatches(STEP_BATCHES, BatchConfig.batch_size)
    return {
        arm: 1e6 / memory_examples_per_s(learner_config(arm, buckets=buckets), batches, STEP_ROUNDS)
        for arm in arms
    }


def descendants(pid: int) -> list[int]:
    """pid and the processes below it, as /proc lists them now ([] once it is gone)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{current}/task/{tid}/children").read_text()
                queue += [int(c) for c in children.split()]
    return found


def vm_hwm_kb(pid: int) -> int:
    """The peak resident set of a running process since its exec, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (its memory already released)


class PeakRss:
    """The peak RSS of each component, with its descendants, sampled while they run.

    A process's VmHWM (its high-water mark since its exec), summed over the component's
    process and every descendant seen. Not wait4's ru_maxrss: a process started by fork and
    exec inherits there its parent's resident set (this bench's, hundreds of MB). Growth in
    the last sampling interval before a process exits is missed.
    """

    def __init__(self) -> None:
        self.peaks: dict[str, dict[int, int]] = {}

    def sample(self, running: Mapping[str, int]) -> None:
        """Read the peaks of the running components, given as name -> PID."""
        for name, pid in running.items():
            peaks = self.peaks.setdefault(name, {})
            for process in descendants(pid):
                peaks[process] = max(peaks.get(process, 0), vm_hwm_kb(process))

    def mb(self, name: str) -> float:
        return sum(self.peaks.get(name, {}).values()) / 1024


def figures(
    cpu_s: Mapping[str, float | None],
    peaks: PeakRss,
    clicks: int,
    events: int,
    step_us: Mapping[str, float],
) -> dict:
    """The bench's figures from each component's CPU seconds and peak RSS (module docstring)."""
    components = {}
    for name, seconds in cpu_s.items():
        if seconds is None:
            raise OpsError(f"bench pipeline: {name} was not reaped here: its CPU is unknown")
        cpu = round(seconds, 3)
        components[name] = {
            "cpu_s": cpu,
            "us_per_click": round(cpu * 1e6 / clicks, 1),
            "us_per_event": round(cpu * 1e6 / events, 1),
            "rss_mb": round(peaks.mb(name), 1),
        }
    total = round(sum(c["us_per_click"] for c in components.values()), 1)
    model_step = round(sum(step_us.values()), 1)
    return {
        "clicks": clicks,
        "events": events,
        "components": components,
        "total_cpu_s": round(sum(c["cpu_s"] for c in components.values()), 3),
        "total_us_per_click": total,
        "total_us_per_event": round(sum(c["us_per_event"] for c in components.values()), 1),
        "total_rss_mb": round(sum(c["rss_mb"] for c in components.values()), 1),
        "model_step_us_per_example": {arm: round(us, 1) for arm, us in step_us.items()},
        "model_step_us_per_click": model_step,
        "ratio": round(total / model_step, 2),
        "load_average": list(os.getloadavg()),
    }


def print_table(result: dict) -> None:
    print(f"\n{result['clicks']:,} clicks, {result['events']:,} events")
    print(f"{'component':<16}{'CPU s':>9}{'us/click':>10}{'us/event':>10}{'RSS MB':>9}")
    for name, c in result["components"].items():
        print(
            f"{name:<16}{c['cpu_s']:>9.1f}{c['us_per_click']:>10,.0f}"
            f"{c['us_per_event']:>10,.0f}{c['rss_mb']:>9,.0f}"
        )
    print(
        f"{'total':<16}{result['total_cpu_s']:>9.1f}{result['total_us_per_click']:>10,.0f}"
        f"{result['total_us_per_event']:>10,.0f}{result['total_rss_mb']:>9,.0f}"
    )
    steps = ", ".join(f"{a} {us:,.0f}" for a, us in result["model_step_us_per_example"].items())
    print(
        f"model step {result['model_step_us_per_click']:,.0f} us per click ({steps} us per "
        f"example); ratio total / model step {result['ratio']:.2f} (target <= 3); load "
        f"average {' '.join(f'{x:.2f}' for x in result['load_average'])}"
    )
