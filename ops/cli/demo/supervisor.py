"""Supervised child processes: `mmn` commands, each logging to its own file, stopped by PID.

The demo runs every component (broker, replay, joiner, trainers, evaluator) as a child
`python -m ops.cli ...` whose stdout and stderr go to `<log dir>/<name>.log`, plain text.
The supervisor watches them: a child that exits with a non-zero code fails the run with
the tail of its log; a daemon child (one that runs until stopped, like the broker) fails
it by exiting at all. Stopping (the end of the run, Ctrl-C, SIGTERM, a failure) sends
SIGTERM to every running child by PID, then SIGKILL to those still running after a grace
period (`streaming.processes.stop_processes`); the daemons (the broker) go last, so that a
trainer stopping on SIGTERM can still publish its last snapshot.

A child reaped by `Child.poll` keeps the CPU seconds the kernel accounted for it (user +
system, its own and those of the descendants it waited for), which `mmn bench pipeline`
reports per component.

Children get the parent's environment without its `MMN_*` variables: the demo passes
every setting it means on the command line, and a variable meant for a user's own
deployment must not change the demo's children (or its report).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from ops.errors import ComponentFailed, OpsError
from streaming.processes import stop_processes

ENV_PREFIX = "MMN_"


@dataclass
class Child:
    """One started child: its name, command line, log file and process."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    process: subprocess.Popen[bytes]
    daemon: bool
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    cpu_s: float | None = None

    def poll(self) -> int | None:
        """The exit code once it has exited (noting when, and its CPU seconds), else None."""
        if self.process.returncode is None:
            # wait4 rather than Popen.poll: reaping it is the one chance to read its rusage.
            pid, status, rusage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self.cpu_s = rusage.ru_utime + rusage.ru_stime
        code = self.process.returncode
        if code is not None and self.ended is None:
            self.ended = time.monotonic()
        return code

    @property
    def wall_s(self) -> float:
        """Wall seconds from its start to its exit (or to now, while it runs)."""
        return (self.ended or time.monotonic()) - self.started

    def tail(self, lines: int = 20) -> str:
        """The last `lines` lines of the child's log."""
        return "\n".join(read_tail(self.log_path).splitlines()[-lines:])


def read_tail(path: Path, max_bytes: int = 16_384) -> str:
    """The last max_bytes of a text file ('' when it does not exist yet)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def child_environment(
    environ: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The parent's environment without MMN_* settings, plus `extra`, with unbuffered output.

    >>> env = child_environment({"PATH": "/bin", "MMN_DB": "sqlite:///x.db"}, {"A": "1"})
    >>> sorted(env)
    ['A', 'PATH', 'PYTHONUNBUFFERED']
    """
    source = os.environ if environ is None else environ
    env = {k: v for k, v in source.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"  # a log file shows each line as it is written
    return env


class Supervisor:
    """Starts `mmn` children, checks them, waits for them and stops them; a context manager.

    cwd: the children's working folder (what they write relative to it lands there).
    env: variables set for every child, on top of the parent's environment.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        grace_s: float = 15.0,
        python: str = sys.executable,
    ) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.env = dict(env or {})
        self.grace_s = grace_s
        self.python = python
        self.children: dict[str, Child] = {}

    def start(self, name: str, args: Sequence[str], *, daemon: bool = False) -> Child:
        """Start `mmn ARGS` as the child `name`, its output in `<log dir>/<name>.log`."""
        if name in self.children:
            raise ValueError(f"a child called {name!r} was started already")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        argv = (self.python, "-m", "ops.cli", *args)
        with open(log_path, "ab") as log:
            log.write(f"$ mmn {' '.join(args)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(extra=self.env),
                cwd=self.cwd,
                # Its own session: Ctrl-C in a terminal reaches the supervisor, which stops
                # the children in order, instead of every process at once.
                start_new_session=True,
            )
        child = Child(name=name, argv=argv, log_path=log_path, process=process, daemon=daemon)
        self.children[name] = child
        return child

    def check(self) -> None:
        """Raise ComponentFailed for the first child that failed."""
        for child in self.children.values():
            code = child.poll()
            if code is not None and (code != 0 or child.daemon):
                raise ComponentFailed(child, code)

    def finished(self, name: str) -> bool:
        """True once the child `name` has exited with code 0."""
        return self.children[name].poll() == 0

    def wait(
        self,
        names: Iterable[str],
        *,
        timeout_s: float,
        tick: Callable[[], None] = lambda: None,
        tick_s: float = 0.5,
    ) -> None:
        """Block until every named child exited 0, checking all children and calling tick."""
        names = tuple(names)
        deadline = time.monotonic() + timeout_s
        while True:
            self.check()
            tick()
            if all(self.finished(name) for name in names):
                return
            if time.monotonic() > deadline:
                running = [n for n in names if not self.finished(n)]
                raise OpsError(
                    f"{', '.join(running)} did not finish within {timeout_s:.0f}s; "
                    f"see their logs in {self.log_dir}"
                )
            time.sleep(tick_s)

    def stop_child(self, name: str) -> Child:
        """Stop one child by PID and reap it (its CPU noted): SIGTERM, SIGKILL after grace_s."""
        child = self.children[name]
        if child.poll() is None:
            os.kill(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while child.poll() is None:
            if time.monotonic() > deadline:
                os.kill(child.process.pid, signal.SIGKILL)
                deadline = math.inf
            time.sleep(0.05)
        return child

    def stop(self) -> None:
        """Stop every running child by PID, daemons last: SIGTERM, then SIGKILL after grace_s."""
        for daemons in (False, True):
            processes = [c.process for c in self.children.values() if c.daemon == daemons]
            stop_processes(processes, self.grace_s)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
