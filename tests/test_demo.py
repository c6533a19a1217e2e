"""`mmn demo` runs the whole pipeline on a small log: replay, join, train, score."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.cli import main
from ops.cli.options import class_default
from ops.store.database import list_snapshots, open_registry
from ops.store.snapshots import SnapshotStoreConfig


@pytest.mark.broker
@pytest.mark.slow
def test_demo_runs_end_to_end_and_scores_the_held_out_days(tmp_path, capsys):
    assert main(["demo", "--rows", "6000", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "every topic matches the file" in out
    served = re.search(r"serving snapshot v(\d+) \(watermark ", out)
    assert served, out
    assert (tmp_path / "snapshots" / "demo-mmn" / f"v{int(served[1]):06d}.pt").exists()
    auc = re.search(r"MMN \(online, v\d+\)\s+([0-9.]+)", out)
    oracle = re.search(r"oracle \(true p\)\s+([0-9.]+)", out)
    assert auc and oracle, out
    # A tiny log learns little, but the scores must be real: between chance-ish and the oracle.
    assert 0.45 < float(auc[1]) <= float(oracle[1])


def listening_sockets(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that one of `pids` holds."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            raw = bytes.fromhex(address)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, raw), int(port, 16)))
    return found


def process_tree(root: int) -> set[int]:
    """root and all its descendants."""
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return tree


@pytest.mark.broker
@pytest.mark.slow
def test_a_running_demo_listens_on_127_0_0_1_only_and_leaves_few_snapshots(tmp_path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "demo", "--rows", "6000", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[tuple[str, int]] = set()
    try:
        while demo.poll() is None:
            seen |= listening_sockets(process_tree(demo.pid))
            time.sleep(0.5)
        out = demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out[-3000:]
    assert seen, "the demo's broker was never seen listening"
    assert {address for address, _ in seen} == {"127.0.0.1"}, seen
    # Retention: at most --keep-snapshots files plus the serving one; files and rows agree.
    folder = tmp_path / "snapshots" / "demo-mmn"
    files = {p.name for p in folder.glob("v*.pt")}
    assert len(files) <= class_default(SnapshotStoreConfig, "keep_snapshots") + 1
    with open_registry(f"sqlite:///{tmp_path / 'registry.db'}", create=False)() as session:
        assert {Path(s.path).name for s in list_snapshots(session, "demo-mmn")} == files
