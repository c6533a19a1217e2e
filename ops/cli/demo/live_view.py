"""The demo's live view: one line per component, read from the children's own progress lines.

Every component writes progress lines to its log, `progress key=value ...` (the trainer's
log records, the replay's and the joiner's lines when their output is not a terminal).
The view reads the last such line of each child's log and shows its figures: nothing is
computed here, so what the view shows is what the components say. On a terminal the block
is redrawn in place; elsewhere (a pipe, a test) it is printed every `every_s` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

from ops.cli.demo.supervisor import Supervisor, read_tail

Fields = Mapping[str, str]


def last_progress(text: str) -> dict[str, str]:
    """The key=value fields of the last progress line in a log's text ({} when none).

    >>> last_progress("start\\n12:00 INFO x progress run=a examples=3\\nprogress run=a examples=7\\n")
    {'run': 'a', 'examples': '7'}
    >>> last_progress("no progress here")
    {}
    """
    for line in reversed(text.splitlines()):
        head, sep, rest = line.partition("progress ")
        if sep and (not head or head.endswith(" ")) and "=" in rest:
            return dict(token.split("=", 1) for token in rest.split() if "=" in token)
    return {}


def _count(fields: Fields, key: str) -> str:
    value = fields.get(key, "-").replace(",", "")  # some lines group thousands already
    try:
        return f"{int(float(value)):,}"
    except ValueError:
        return "-"


def _clock(fields: Fields, key: str) -> str:
    # ISO 8601 UTC as logged (2020-08-03T00:00:00Z) -> "2020-08-03 00:00".
    value = fields.get(key, "-")
    return value[:16].replace("T", " ") if len(value) >= 16 else value


def replay_line(fields: Fields) -> str:
    """The replay's figures: events sent, their rate and the event clock."""
    return (
        f"{_count(fields, 'events'):>9} events   {_count(fields, 'events_per_s'):>7} events/s   "
        f"clock {_clock(fields, 'clock')}"
    )


def join_line(fields: Fields) -> str:
    """The joiner's figures: labeled examples out in mini-batches and their watermark."""
    return (
        f"{_count(fields, 'rows'):>9} examples {_count(fields, 'rows_per_s'):>7} ex/s       "
        f"watermark {_clock(fields, 'watermark')}"
    )


def trainer_line(fields: Fields) -> str:
    """A trainer's figures: examples trained, rate, watermark, progressive AUC when it has one."""
    line = (
        f"{_count(fields, 'examples'):>9} trained  {_count(fields, 'examples_per_s'):>7} ex/s       "
        f"watermark {_clock(fields, 'watermark')}"
    )
    if fields.get("pv_auc", "-") != "-":
        # Progressive validation: each mini-batch scored before the trainer learns from it,
        # against the labels known at training time (fake negatives included).
        line += f"   running AUC {fields['pv_auc']}"
    return line


def evaluator_line(fields: Fields) -> str:
    """The evaluator's figures: clicks scored per arm (against final labels), its watermark."""
    arms = [pair.split(":", 1) for pair in fields.get("arms", "").split(",") if ":" in pair]
    counts = ", ".join(f"{arm} {int(n):,}" for arm, n in arms) or "-"
    return f"scored {counts}   watermark {_clock(fields, 'watermark')}"


@dataclass(frozen=True)
class Row:
    """One component of the view: its child's name, its label and how its figures read."""

    child: str
    label: str
    render: Callable[[Fields], str]


class LiveView:
    """Redraws the rows from the children's logs; `tick()` at most every `every_s` seconds."""

    def __init__(
        self,
        supervisor: Supervisor,
        rows: list[Row],
        *,
        stream: TextIO | None = None,
        every_s: float | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.rows = rows
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty()
        self.every_s = every_s if every_s is not None else (0.5 if self.tty else 15.0)
        self.started = time.monotonic()
        self._next = self.started
        self._drawn = 0
        # The last figures seen per child: a busy log can push its progress line out of the
        # tail that is read.
        self._seen: dict[str, dict[str, str]] = {}

    def lines(self) -> list[str]:
        """The view as text lines, one per row, after a header with the elapsed time."""
        out = [f"-- live ({time.monotonic() - self.started:5.0f}s) " + "-" * 50]
        width = max(len(row.label) for row in self.rows)
        for row in self.rows:
            child = self.supervisor.children.get(row.child)
            if child is None:
                state, figures = "waiting", ""
            else:
                code = child.process.poll()
                state = "running" if code is None else ("done" if code == 0 else f"exit {code}")
                fields = last_progress(read_tail(child.log_path)) or self._seen.get(row.child, {})
                self._seen[row.child] = fields
                figures = row.render(fields)
            out.append(f"  {row.label:<{width}}  {state:<8} {figures}")
        return out

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + self.every_s
        lines = self.lines()
        if self.tty and self._drawn:
            # Back to the top of the last drawing; each line is cleared as it is rewritten.
            self.stream.write(f"\x1b[{self._drawn}F")
        for line in lines:
            self.stream.write(("\x1b[2K" if self.tty else "") + line + "\n")
        self.stream.flush()
        self._drawn = len(lines)
