"""`mmn train --nproc N`: N ranks of one run on this host, started and watched by this process.

Each rank is the same `mmn train` command in a child process, told its place by the
environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so a
command run under torchrun (one rank per process, any number of hosts) behaves exactly as
one started here. The ranks' process group uses gloo on the CPU and NCCL on CUDA.

Supervision: if a rank exits non-zero (a crash, a SIGKILL, a lost broker), the others are
killed and the whole group restarts from the run's last snapshot, up to --max-restarts
times; a rank that exits 2 (a bad option) stops the group at once. SIGTERM or SIGINT is
passed to every rank, which stop together after a last snapshot (exit 0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from ops.training.data_parallel import GroupLink

log = logging.getLogger("ops.cli.train")

MAX_RESTARTS = 3
GRACE_S = 30.0  # after a SIGTERM, how long the ranks get to snapshot before SIGKILL


def group_of_environment() -> tuple[int, int] | None:
    """(rank, world size) when this process is a rank of a group of several (torchrun's
    variables, or this module's), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return int(os.environ["RANK"]), world


def join_group(device: torch.device) -> None:
    """Join the process group the environment describes (gloo on CPU, NCCL on CUDA)."""
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")


def joined_group(stack: contextlib.ExitStack, device: torch.device) -> GroupLink:
    """This process joined to the group the environment describes (left when stack closes)."""
    import torch.distributed as dist

    from ops.training.data_parallel import GroupLink

    join_group(device)
    stack.callback(dist.destroy_process_group)
    return GroupLink()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def supervise(argv: list[str], nproc: int, max_restarts: int) -> int:
    """Run `mmn train argv` as nproc ranks until they finish; restart the group on a failure."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    for attempt in range(max_restarts + 1):
        code = _run_group(argv, nproc, stop)
        if code in (0, 2) or stop.is_set():
            return code
        if attempt < max_restarts:
            log.warning("a rank failed (exit %d): restarting the group from the last snapshot "
                        "(restart %d of %d)", code, attempt + 1, max_restarts)  # fmt: skip
    print(f"mmn train: a rank failed {max_restarts + 1} times; giving up", file=sys.stderr)
    return 1


def _run_group(argv: list[str], nproc: int, stop: threading.Event) -> int:
    """Start the ranks and wait: 0 when all exit 0, else the first failure's exit code."""
    port = str(free_port())
    ranks = []
    for rank in range(nproc):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(nproc), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}  # fmt: skip
        ranks.append(
            subprocess.Popen(
                [sys.executable, "-m", "ops.cli", *argv], env=env, preexec_fn=_die_with_parent
            )
        )
    stopping_since: float | None = None
    while True:
        codes = [p.poll() for p in ranks]
        failed = [c for c in codes if c not in (None, 0)]
        if failed:
            _kill(ranks)
            return 2 if 2 in failed else failed[0]
        if all(c == 0 for c in codes):
            return 0
        if stop.is_set() and stopping_since is None:
            stopping_since = time.monotonic()
            for p in ranks:
                p.send_signal(signal.SIGTERM)
        if stopping_since is not None and time.monotonic() - stopping_since > GRACE_S:
            _kill(ranks)
            return 1
        time.sleep(0.2)


def _die_with_parent() -> None:
    """In a rank, before it runs: SIGKILL it if this supervisor dies (even by SIGKILL), so
    no orphaned group trains on beside the one a restarted supervisor starts (Linux)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill(ranks: list[subprocess.Popen]) -> None:
    for p in ranks:
        if p.poll() is None:
            p.kill()
    for p in ranks:
        p.wait()
