"""The one progress line of the project's long-running commands: a count, its rate, and fields.

A daemon shows that it is alive and what it does. `ProgressLine` decides when a line is
due (every `every_s` wall seconds), measures the rate since the previous line and formats
`key=value` pairs; where the line goes is the caller's choice: a log record (the trainer)
or a line rewritten in place on a terminal (`TerminalProgress`, the replay), or appended to
a log file as `progress key=value ...` (`LogProgress`, the replay off a terminal: the
demo's live view reads those lines).

>>> lines = []
>>> line = ProgressLine(lines.append, unit="events", every_s=0.0, clock=iter([0.0, 2.0]).__next__)
>>> line.emit(1200, clock=format_event_time(86400))
600.0
>>> lines
['events=1200 events_per_s=600 clock=1970-01-02T00:00:00Z']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from streaming.events import format_event_time


class ProgressLine:
    """Throttled progress lines: `due()` says whether to emit one, `emit()` writes it.

    write: receives each line (without a line end).
    unit: what is counted; names the count and its rate (`<unit>=`, `<unit>_per_s=`).
    every_s: wall seconds between lines. clock: wall clock (monotonic seconds).
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        unit: str,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.unit, self.every_s, self.clock = write, unit, every_s, clock
        self._last_time = clock()
        self._last_count = 0

    def due(self, force: bool = False) -> bool:
        """Whether a line is due now (always when force)."""
        return force or self.clock() - self._last_time >= self.every_s

    def emit(self, count: int, **fields: object) -> float:
        """Write a line: the count, its rate since the previous line, then the fields; the rate."""
        now = self.clock()
        elapsed = now - self._last_time
        rate = (count - self._last_count) / elapsed if elapsed > 0 else 0.0
        self._last_time, self._last_count = now, count
        pairs = [f"{self.unit}={count}", f"{self.unit}_per_s={rate:.0f}"]
        pairs += [f"{key}={'-' if value is None else value}" for key, value in fields.items()]
        self.write(" ".join(pairs))
        return rate


class TerminalProgress:
    """A progress line on a terminal, each line overwriting the previous one; silent elsewhere."""

    def __init__(
        self,
        stream: TextIO,
        *,
        unit: str,
        every_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.shown, self.width = stream, False, 0
        self.enabled = stream.isatty()
        self.line = ProgressLine(self._show, unit=unit, every_s=every_s, clock=clock)

    def _show(self, text: str) -> None:
        self.width = max(self.width, len(text))  # pad: a shorter line must hide a longer one
        self.stream.write(f"\r{text:<{self.width}}")
        self.stream.flush()
        self.shown = True

    def update(self, count: int, ts: int) -> None:
        """Show count and the event-time clock ts, if a line is due."""
        if self.enabled and self.line.due():
            self.line.emit(count, clock=format_event_time(ts))

    def close(self) -> None:
        """End the line, so that what is printed next starts on its own line."""
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


class LogProgress:
    """Progress lines `progress key=value ...` appended to a stream (a log file), and a last one.

    >>> import io
    >>> log = io.StringIO()
    >>> progress = LogProgress(log, unit="events", every_s=3600.0)
    >>> progress.update(10, 86400)  # within the first interval: nothing yet
    >>> progress.close()  # the last figures, whatever the interval
    >>> log.getvalue().startswith("progress events=10 events_per_s=")
    True
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        unit: str,
        every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.line = ProgressLine(self._append, unit=unit, every_s=every_s, clock=clock)
        self._last: tuple[int, int] | None = None

    def _append(self, text: str) -> None:
        self.stream.write(f"progress {text}\n")
        self.stream.flush()

    def update(self, count: int, ts: int, *, force: bool = False) -> None:
        """Append a line with count and the event-time clock ts, if one is due (or forced)."""
        self._last = (count, ts)
        if self.line.due(force):
            self.line.emit(count, clock=format_event_time(ts))

    def close(self) -> None:
        """Append the last figures seen."""
        if self._last is not None:
            self.update(*self._last, force=True)
