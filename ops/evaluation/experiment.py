"""What defines an A/B experiment and how its evaluator runs: `EvaluatorConfig`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ops.errors import ConfigError
from ops.store.names import check_name


@dataclass(frozen=True, kw_only=True)
class EvaluatorConfig:
    """An experiment and how its evaluator runs.

    Attributes:
        experiment: the experiment's name in the registry.
        arms: (arm name, run name) pairs; each arm serves its run's snapshots.
        split: traffic weight of each arm, in the order of `arms` (empty: equal shares).
        control: the arm the others are compared against.
        shadow: every arm also scores all traffic, so that arms compare on the same clicks.
        window_s: event-time window of the report (by impression time).
        salt: salt of the user hash (none: the experiment name).
        flush_rows: final clicks per written batch at most.
        flush_every_event_s: a batch is also written when event time enters a new window of this.
        until_end: stop after every partition's end marker, once every click is written.
        idle_timeout_s: stop after this many wall seconds without a message (none: never).
        snapshot_timeout_s: exit non-zero, naming the arm, when an arm's serving snapshot stays
            undetermined this long (while it waits, the progress line and the experiment's status
            say which arm and since when); none: wait for the trainers forever.
        wait_for_runs_s: at start, wait this long for arms whose run is not in the registry yet
            (none: such an arm is refused at once, naming it and the known runs).
        poll_timeout_s: longest wait of one poll.
        progress_every_s: wall seconds between progress lines.
    """

    experiment: str
    arms: tuple[tuple[str, str], ...]
    split: tuple[float, ...] = ()
    control: str = "control"
    shadow: bool = False
    window_s: int = 86_400
    salt: str | None = None
    flush_rows: int = 4096
    flush_every_event_s: int = 3600
    until_end: bool = False
    idle_timeout_s: float | None = None
    snapshot_timeout_s: float | None = 1800.0
    wait_for_runs_s: float | None = None
    poll_timeout_s: float = 0.5
    progress_every_s: float = 5.0

    def __post_init__(self) -> None:
        check_name("EvaluatorConfig.experiment", self.experiment)
        for _, run in self.arms:
            check_name("--arm", run)
        names = [arm for arm, _ in self.arms]
        if len(names) < 1 or len(set(names)) != len(names):
            raise ConfigError(f"--arm needs distinct NAME=RUN pairs, got {names}")
        if self.control not in names:
            raise ConfigError(f"--control {self.control!r} must name one of the arms {names}")
        if self.split and len(self.split) != len(names):
            raise ConfigError(f"--split has {len(self.split)} weights for {len(names)} arms")
        if any(not w > 0 for w in self.split):
            raise ConfigError(f"--split weights must be > 0, got {self.split}")
        for name in ("window_s", "flush_rows", "flush_every_event_s"):
            if not getattr(self, name) >= 1:
                raise ConfigError(f"EvaluatorConfig.{name} must be >= 1, got {getattr(self, name)}")
        seconds = (
            "idle_timeout_s", "snapshot_timeout_s", "poll_timeout_s", "progress_every_s",
            "wait_for_runs_s",
        )  # fmt: skip
        for name in seconds:
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:  # NaN fails too
                raise ConfigError(f"EvaluatorConfig.{name} must be seconds > 0, got {value}")

    @property
    def weights(self) -> dict[str, float]:
        return {arm: (self.split[i] if self.split else 1.0) for i, (arm, _) in enumerate(self.arms)}

    def record(self) -> dict[str, Any]:
        """What defines the experiment (stored with it; a restart must bring the same)."""
        return {
            "arms": dict(self.arms),
            "split": self.weights,
            "control": self.control,
            "shadow": self.shadow,
            "window_s": self.window_s,
            "salt": self.salt if self.salt is not None else self.experiment,
            "flush_rows": self.flush_rows,
            "flush_every_event_s": self.flush_every_event_s,
        }
