"""`mmn demo`: the whole pipeline as supervised `mmn` processes, with a live view.

    mmn demo [--data FILE] [--rows N] [--seed S] [--arms mmn,esmm] [--out DIR]

See ops.cli.demo.pipeline for what runs, in which order, and how it stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ops.cli.demo.pipeline import run_demo
from ops.cli.demo.plan import DemoConfig
from ops.options.typed import Entry, offered

Settings = offered(DemoConfig, only=("data", "rows", "seed", "arms", "out", "force"))


@dataclass(frozen=True, kw_only=True)
class DemoCommand:
    """The whole pipeline on a synthetic log, live, ending with the A/B report."""

    demo: Annotated[DemoConfig, Settings]


def run(command: DemoCommand) -> int:
    return run_demo(command.demo)


ENTRIES = {
    ("demo",): Entry(
        "the whole pipeline on a synthetic log, live, ending with the A/B report", DemoCommand, run
    )
}
