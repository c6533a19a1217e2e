"""`mmn runs list` and `mmn snapshots list RUN`: what the registry knows.

`mmn snapshots list RUN --json` prints a JSON list, one object per snapshot, oldest first:
version, path, sha256, examples_seen, watermark (event time, seconds), offsets and
created_at (ISO 8601).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import tyro

from ops.cli.outputs import RegistryUrl
from ops.errors import ConfigError
from ops.options.typed import Entry
from ops.options.values import Count
from ops.store.database import (
    DEFAULT_URL,
    get_run,
    latest_snapshot,
    list_runs,
    list_snapshots,
    open_registry,
)
from ops.store.names import check_name
from ops.store.retention import prune
from ops.store.snapshots import SnapshotStoreConfig
from streaming.events import format_event_time

Run = tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="RUN")]]


@dataclass(frozen=True, kw_only=True)
class Listing:
    """What every listing takes."""

    db: RegistryUrl = DEFAULT_URL
    json: bool = False
    """print JSON"""


@dataclass(frozen=True, kw_only=True)
class RunsList(Listing):
    """Every run with its latest snapshot."""


@dataclass(frozen=True, kw_only=True)
class SnapshotsList(Listing):
    """The snapshots of RUN, oldest first."""

    run: Run


@dataclass(frozen=True, kw_only=True)
class SnapshotsPrune:
    """Delete RUN's snapshots beyond the newest N (never the latest, nor one serving an
    experiment), each file with its registry row."""

    run: Run
    db: RegistryUrl = DEFAULT_URL
    keep: Count = cast(int, SnapshotStoreConfig.keep_snapshots)
    """snapshots to keep, the newest"""


def run_list(args: RunsList) -> int:
    Session = open_registry(args.db, create=False)
    with Session() as session:
        rows: list[dict[str, Any]] = []
        for run in list_runs(session):
            latest = latest_snapshot(session, run)
            rows.append(
                {
                    "run": run.name,
                    "model": run.model,
                    "created_at": run.created_at.isoformat(),
                    "latest_version": None if latest is None else latest.version,
                    "examples_seen": 0 if latest is None else latest.examples_seen,
                    "watermark": None if latest is None else latest.watermark,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'run':<24} {'model':<12} {'latest':>6} {'examples':>12}  watermark")
    for row in rows:
        version = "-" if row["latest_version"] is None else f"v{row['latest_version']}"
        print(
            f"{row['run']:<24} {row['model']:<12} {version:>6} {row['examples_seen']:>12}  "
            f"{format_event_time(row['watermark'])}"
        )
    return 0


def snapshot_list(args: SnapshotsList) -> int:
    Session = open_registry(args.db, create=False)
    with Session() as session:
        rows = [s.as_dict() for s in list_snapshots(session, args.run)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'version':>7} {'examples':>12} {'trained':>12}  {'watermark':<20}  {'sha256':<12}  path"
    )
    for row in rows:
        trained = "-" if row["examples_trained"] is None else row["examples_trained"]
        print(
            f"{'v' + str(row['version']):>7} {row['examples_seen']:>12} {trained:>12}  "
            f"{format_event_time(row['watermark']):<20}  {row['sha256'][:12]}  {row['path']}"
        )
    return 0


def snapshot_prune(args: SnapshotsPrune) -> int:
    check_name("RUN", args.run)
    Session = open_registry(args.db, create=False)
    with Session() as session:
        latest = latest_snapshot(session, get_run(session, args.run))
    with contextlib.ExitStack() as stack:
        if latest is not None:  # the trainer's lock: never prune under a running trainer
            lock = stack.enter_context(open(Path(latest.path).parent / ".lock", "a"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(
                    f"run {args.run!r} is being written by a trainer, which prunes its own "
                    "snapshots (--keep-snapshots); stop it first"
                ) from None
        result = prune(Session, args.run, args.keep)
    print(
        f"run {args.run}: removed {len(result.versions)} snapshot(s)"
        + (f" (v{', v'.join(map(str, result.versions))})" if result.versions else "")
        + f"; kept {result.kept}, of which {result.serving} beyond --keep serve an experiment"
    )
    return 0


ENTRIES = {
    ("runs", "list"): Entry("every run with its latest snapshot", RunsList, run_list),
    ("snapshots", "list"): Entry(
        "the snapshots of RUN, oldest first", SnapshotsList, snapshot_list
    ),
    ("snapshots", "prune"): Entry(
        "delete RUN's snapshots beyond the newest N (never the latest, nor one serving an "
        "experiment), each file with its registry row",
        SnapshotsPrune,
        snapshot_prune,
    ),
}
