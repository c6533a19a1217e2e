"""The one progress line: throttled by wall time, rate since the last line, terminal or log."""

from __future__ import annotations

import io

from streaming.events import format_event_time
from streaming.progress import ProgressLine, TerminalProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_line_is_due_every_every_s_and_its_rate_covers_the_last_interval() -> None:
    clock, lines = _Clock(), []
    line = ProgressLine(lines.append, unit="examples", every_s=5.0, clock=clock)
    clock.now += 4.9
    assert not line.due()
    assert line.due(force=True)
    clock.now += 0.1
    assert line.due()
    assert line.emit(1000, loss="0.5000", lag=None) == 200.0
    clock.now += 10.0
    assert line.emit(1500) == 50.0
    assert lines == [
        "examples=1000 examples_per_s=200 loss=0.5000 lag=-",
        "examples=1500 examples_per_s=50",
    ]


def test_terminal_line_overwrites_itself_and_ends_with_a_newline() -> None:
    clock, tty = _Clock(), _Terminal()
    progress = TerminalProgress(tty, unit="events", every_s=0.5, clock=clock)
    clock.now += 2.0
    progress.update(1200, 1_596_412_800)
    progress.update(1300, 1_596_412_860)  # not due: nothing written
    progress.close()
    assert tty.getvalue() == "\revents=1200 events_per_s=600 clock=2020-08-03T00:00:00Z\n"


def test_terminal_line_is_silent_when_not_a_terminal() -> None:
    clock, quiet = _Clock(), io.StringIO()
    progress = TerminalProgress(quiet, unit="events", every_s=0.0, clock=clock)
    clock.now += 1.0
    progress.update(5, 0)
    progress.close()
    assert quiet.getvalue() == ""


def test_event_times_read_the_same_everywhere() -> None:
    assert format_event_time(1_596_412_800) == "2020-08-03T00:00:00Z"
    assert format_event_time(None) == "-"
