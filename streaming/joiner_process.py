"""Joiner workers as child processes: create their topics, start, supervise, watch for the end, stop.

What `mmn join`, its benchmark and the end-to-end tests share. Workers are stopped by
the PIDs started here: SIGTERM, then SIGKILL after a grace period (a Faust worker with a
crashed agent may ignore SIGTERM).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from streaming.errors import JoinerError
from streaming.join_monitor import JoinMonitor
from streaming.joiner_app import JoinerConfig
from streaming.processes import stop_processes
from streaming.topics import create_topics


def create_joiner_topics(config: JoinerConfig) -> None:
    """Sources, outputs and the table changelog, all with the sources' partition count."""
    names = config.topics
    every = (*names.sources, names.examples, names.minibatches, names.deadletter)
    partitions = {name: config.partitions for name in every}
    partitions[config.changelog_topic] = config.partitions
    # Faust's assignor topic; declared here because Faust's own declaration is off.
    partitions[f"{config.app_id}-__assignor-__leader"] = 1
    create_topics(config.bootstrap, partitions)


def exit_cause(code: int) -> str:
    """How a process ended, from its Popen return code.

    >>> exit_cause(-9), exit_cause(1)
    ('was killed by SIGKILL', 'exited with code 1')
    """
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass(frozen=True, kw_only=True)
class SupervisionConfig:
    """How `mmn join` looks after its workers.

    Attributes:
        max_restarts: worker restarts allowed in all, after which the joiner exits non-zero.
        broker_timeout_s: how long the broker may not answer before the joiner gives up.
        progress_every_s: wall seconds between progress lines.
        stop_grace_s: how long SIGTERM may take before SIGKILL.
    """

    max_restarts: int = 3
    broker_timeout_s: float = 300.0
    progress_every_s: float = 10.0
    stop_grace_s: float = 2.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise JoinerError(
                f"SupervisionConfig.max_restarts must be >= 0, got {self.max_restarts}"
            )
        for name in ("broker_timeout_s", "progress_every_s", "stop_grace_s"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise JoinerError(f"SupervisionConfig.{name} must be > 0 seconds, got {value}")


class JoinerWorkers:
    """N joiner worker processes of one config, supervised; a context manager that stops them.

    A worker that exits for any reason (a crash, the OOM killer's SIGKILL) is restarted in
    its slot, `max_restarts` times in all; then `supervise` raises JoinerError naming the
    cause. Each slot appends to its own plain-text log, `joiner-<slot>.log`.
    """

    def __init__(
        self,
        config: JoinerConfig,
        *,
        log_dir: Path,
        supervision: SupervisionConfig | None = None,
    ) -> None:
        self.config = config
        self.log_dir = log_dir
        self.supervision = supervision or SupervisionConfig()
        self.max_restarts = self.supervision.max_restarts
        self.restarts = 0
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> JoinerWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            self.processes.append(self._spawn(len(self.processes)))
        return self

    def log_path(self, slot: int) -> Path:
        return self.log_dir / f"joiner-{slot}.log"

    def worker_argv(self) -> list[str]:
        """The command line of one worker process."""
        return [sys.executable, "-m", "streaming.joiner_app", self.config.to_json()]

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        with open(self.log_path(slot), "ab") as log:
            process = subprocess.Popen(
                self.worker_argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Faust keeps a data folder (`<app id>-data`) in its working folder: the logs'.
                cwd=self.log_dir,
            )
        return process

    def supervise(self) -> list[str]:
        """Restart every worker that exited; one line per restart. JoinerError when none is left."""
        notes = []
        for slot, process in enumerate(self.processes):
            code = process.poll()
            if code is None:
                continue
            cause = f"joiner worker {slot} {exit_cause(code)}"
            last_line = f"last log line: {self.last_log_line(slot)} ({self.log_path(slot)})"
            if self.restarts >= self.max_restarts:
                raise JoinerError(
                    f"{cause}; no restarts left ({self.restarts} of --max-restarts "
                    f"{self.max_restarts} used); {last_line}"
                )
            self.restarts += 1
            self.processes[slot] = self._spawn(slot)
            note = f"{cause}; restarted ({self.restarts} of {self.max_restarts} restarts)"
            notes.append(note if code < 0 else f"{note}; {last_line}")
        return notes

    def last_log_line(self, slot: int) -> str:
        """The last line a worker slot logged ("-" if none)."""
        with open(self.log_path(slot), "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "-"

    def kill(self, index: int) -> None:
        """SIGKILL one worker (a crash), by its PID."""
        process = self.processes[index]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def follow(
        self,
        monitor: JoinMonitor,
        *,
        until_end: bool,
        timeout_s: float = math.inf,
        stop: threading.Event | None = None,
        tick: Callable[[list[str]], None] | None = None,
    ) -> None:
        """Supervise the workers and read their output until the end (or stop, or timeout).

        tick: called after every round with the restart lines of that round.
        """
        deadline = time.monotonic() + timeout_s
        while not (until_end and monitor.done) and not (stop is not None and stop.is_set()):
            if time.monotonic() >= deadline:
                raise JoinerError(
                    f"the joiner did not finish within {timeout_s:.0f}s: end batches from "
                    f"partitions {sorted(monitor.ended)} of {self.config.partitions}; "
                    f"see {self.log_dir}"
                )
            notes = self.supervise()
            monitor.poll()
            if tick is not None:
                tick(notes)

    def wait_for_end(self, timeout_s: float) -> JoinMonitor:
        """Block until every partition's end mini-batch is out; restarts dead workers."""
        monitor = JoinMonitor(self.config)
        try:
            self.follow(monitor, until_end=True, timeout_s=timeout_s)
        finally:
            monitor.close()
        return monitor

    def stop(self) -> None:
        """SIGTERM every worker, then SIGKILL those still running after the grace period."""
        stop_processes(self.processes, self.supervision.stop_grace_s)

    def __enter__(self) -> JoinerWorkers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
