"""Stopping the processes we started, by their PIDs: SIGTERM, then SIGKILL after a grace period.

Never by name: only the `Popen` objects this process holds. A Faust worker whose agent
crashed may ignore SIGTERM, hence the SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence


def stop_processes(processes: Sequence[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM every running process, then SIGKILL those still running after grace_s."""
    for process in processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
