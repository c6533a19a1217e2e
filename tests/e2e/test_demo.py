"""`mmn demo`: every component as a supervised `mmn` process, end to end, and how it stops."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.cli import main
from ops.cli.demo.plan import DemoConfig, RunFolder, run_name
from ops.store.database import get_run, list_snapshots, open_registry
from ops.store.retention import serving_ids, with_links
from ops.store.snapshots import SnapshotStoreConfig
from simulator.sources import open_source

MMN, CONTROL = DemoConfig().arms  # the demo's default arms: the MMN variant, then the control
ARMS = (MMN, CONTROL)
COMPONENTS = ("join", f"train-{MMN}", f"train-{CONTROL}", "evaluate", "replay", "report")


@pytest.mark.broker
@pytest.mark.slow
def test_a_small_demo_runs_every_component_and_reports_every_arm_and_domain(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--rows", "6000", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in COMPONENTS:
        assert re.search(rf"^  {name}\s+done in\s+[0-9.]+s$", printed, re.M), printed
        assert (out / "logs" / f"{name}.log").stat().st_size > 0
    assert (out / "logs" / "broker.log").exists()
    assert list((out / "logs" / "join-workers").glob("joiner-*.log"))
    # The live view's last drawing: the replay's events and every arm trained every example.
    last = printed[printed.rindex("-- live") :]
    joined = re.search(r"joiner\s+done\s+([0-9,]+) examples", last)
    assert joined, last
    for arm in ARMS:
        trained = re.search(rf"train {arm}\s+done\s+([0-9,]+) trained", last)
        assert trained and trained[1] == joined[1], last
    # The report: printed, its HTML in the run folder, and every arm on every domain.
    html = out / "report.html"
    assert f"HTML report (plots): {html.resolve()}" in printed
    assert html.read_text().lstrip().lower().startswith("<!doctype html>")
    assert main(["report", "show", "demo", "--db", RunFolder(out.resolve()).db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    records = list(open_source("criteo-search", out / "data" / "CriteoSearchData").rows())
    types, scenarios = {r.conv_type for r in records}, {r.scenario for r in records}
    assert set(report["arms"]) == set(ARMS)
    for arm, block in report["arms"].items():
        assert block["run"] == run_name(arm)
        assert set(block["per_type"]) == types and set(block["per_scenario"]) == scenarios
        # Every click is scored or counted as before the arm's first snapshot (published
        # only after --min-train-examples: most of this small log's first two months).
        assert block["overall"]["n"] + report["unscored"][arm] == len(records), block["overall"]
        assert block["overall"]["n"] > 0.2 * len(records), block["overall"]
    assert set(report["comparisons"]) == {MMN}  # against the control, the last arm


def _snapshots(run_folder: Path) -> dict[str, list[tuple]]:
    """Every arm's snapshots as (version, watermark, examples seen, sha256), from the registry."""
    with open_registry(RunFolder(run_folder).db).begin() as session:
        return {
            arm: [
                (s.version, s.watermark, s.examples_seen, s.sha256)
                for s in list_snapshots(session, run_name(arm))
            ]
            for arm in ARMS
        }


def _report(run_folder: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["report", "show", "demo", "--db", RunFolder(run_folder).db, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.broker
@pytest.mark.slow
def test_the_same_seed_gives_the_same_models_and_report(tmp_path, capsys):
    # Two demos at once: each runs slower and unevenly, which must change nothing.
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "demo", "--rows", "6000", "--out", str(out)],
            stdout=subprocess.DEVNULL,
        )
        for out in (tmp_path / "a", tmp_path / "b")
    ]
    assert [run.wait(timeout=600) for run in runs] == [0, 0]
    first, second = _snapshots(tmp_path / "a"), _snapshots(tmp_path / "b")
    assert all(len(first[arm]) >= 3 for arm in first), first
    assert first == second
    reports = [_report(tmp_path / run, capsys) for run in ("a", "b")]
    for report in reports:  # when each evaluator finished is wall-clock time
        report["status"] = report["status"]["state"]
    assert reports[0] == reports[1]


def test_a_folder_no_demo_made_is_refused(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "holds files `mmn demo` did not make" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_an_unknown_arm_is_a_one_line_error(tmp_path, capsys):
    assert main(["demo", "--arms", "mmn,nope", "--out", str(tmp_path / "run")]) == 2
    assert "--arms: unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.broker
@pytest.mark.slow
def test_a_failing_component_fails_the_demo_with_its_log_tail(tmp_path):
    bad = tmp_path / "CriteoSearchData"
    bad.write_text("this is not a Criteo line\n")
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "demo", "--data", str(bad), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "replay failed; the end of" in done.stderr
    assert "mmn replay: error:" in done.stderr  # the replay's own line, from its log
    assert done.stderr.rstrip().splitlines()[-1].startswith("mmn demo: error: replay exited with")


def _descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc (children keep their parent across setsid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.broker
@pytest.mark.slow
def test_sigterm_stops_every_child_and_grandchild_by_pid(tmp_path):
    out = tmp_path / "run"
    demo = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "demo", "--rows", "30000", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Wait until the joiner's worker (a grandchild) and both trainers run.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logs = out / "logs"
            trainers = [logs / f"train-{arm}.log" for arm in ARMS]
            if list(logs.glob("join-workers/joiner-*.log")) and all(
                log.exists() and "progress" in log.read_text(errors="replace") for log in trainers
            ):
                break
            time.sleep(0.5)
        family = _descendants(demo.pid)
        assert len(family) >= 6, family  # broker (+ tansu), join (+ worker), 2 trainers, replay
        os.kill(demo.pid, signal.SIGTERM)
        printed, _ = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, printed
    assert "interrupted: stopping" in printed
    time.sleep(1.0)
    assert not [pid for pid in family if _alive(pid)], printed


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
    out = tmp_path / "run"
    demo = subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "demo", "--rows", "6000", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[tuple[str, int]] = set()
    try:
        while demo.poll() is None:
            seen |= listening_sockets(process_tree(demo.pid))
            time.sleep(0.5)
        printed = demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, printed[-3000:]
    assert seen, "the demo's broker was never seen listening"
    assert {address for address, _ in seen} == {"127.0.0.1"}, seen
    # Retention: per run, the --keep-snapshots newest plus those that served the experiment's
    # scored clicks (with their chains' links); every registry row has its file and every file its row.
    keep = SnapshotStoreConfig.keep_snapshots
    folder = RunFolder(out)
    with open_registry(folder.db, create=False)() as session:
        for arm in ARMS:
            files = {p.name for p in (folder.snapshots / run_name(arm)).glob("v*.pt")}
            rows = list_snapshots(session, run_name(arm))
            assert {Path(s.path).name for s in rows} == files
            served = serving_ids(session, get_run(session, run_name(arm)))
            newest = {s.id for s in sorted(rows, key=lambda s: s.version)[-keep:]}
            kept = with_links(rows, newest | served)  # and the links of their delta chains
            assert len(files) >= 1 and {s.id for s in rows} <= kept
