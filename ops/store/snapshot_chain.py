"""Delta chains in the registry: which file a serving snapshot is written as, and loading one.

The publishing side (`DeltaWriter`) keeps the last published state in memory and writes
each next serving snapshot as a delta of it (`ops.store.deltas`), until the chain since its
full base would cost more than a full file, or holds `max_chain` deltas: then a full one.
The loading side reads a run's links from the registry (`Snapshot.parent_version`) and
applies the chain; `load_checkpoint` adds a snapshot's resume checkpoint to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from model.snapshot import CHECKPOINT, encode_state
from ops.errors import SnapshotCorruptError, SnapshotStoreError
from ops.store.database import Run, Snapshot
from ops.store.deltas import STATE_DICT, Link, StateCache, delta_payload, diff, resolve
from ops.store.snapshot_files import load_snapshot
from ops.store.zero_rows import unpack

log = logging.getLogger("ops.store.snapshots")


def links_of(session: Session, run: str) -> dict[int, Link]:
    """The run's registered serving files by version, as chain links."""
    rows = session.execute(
        select(Snapshot.version, Snapshot.path, Snapshot.sha256, Snapshot.parent_version)
        .join(Run, Run.id == Snapshot.run_id)
        .where(Run.name == run)
    )
    return {version: Link(version, path, sha, parent) for version, path, sha, parent in rows}


def read_link(link: Link) -> dict[str, Any]:
    """A link's own file, verified against the registry's sha256."""
    return load_snapshot(link.path, link.sha256)


def load_serving(
    Session: sessionmaker[Session], run: str, version: int, cache: StateCache | None = None
) -> dict[str, Any]:
    """The full serving payload of a run's version, its delta chain applied."""
    with Session() as session:
        links = links_of(session, run)
    return resolve(links, version, read_link, run=run, cache=cache)


def load_checkpoint(Session: sessionmaker[Session], snapshot: Any) -> dict[str, Any]:
    """The whole payload a snapshot (`PublishedSnapshot`) was published from: its serving
    state (chain applied) and its checkpoint, verified and checked to belong together; the
    serving state alone when it has none."""
    payload = load_serving(Session, snapshot.run, snapshot.version)
    if snapshot.checkpoint_path is None or snapshot.checkpoint_sha256 is None:
        return payload
    checkpoint = load_snapshot(snapshot.checkpoint_path, snapshot.checkpoint_sha256)
    if checkpoint.get("serving_sha256") != snapshot.sha256 or CHECKPOINT not in checkpoint:
        raise SnapshotCorruptError(
            f"checkpoint {snapshot.checkpoint_path} does not belong to snapshot {snapshot.path}"
        )
    return {**payload, CHECKPOINT: unpack(checkpoint[CHECKPOINT])}


@dataclass(frozen=True)
class Encoded:
    """A serving file's bytes and its place in a chain (both None: a full snapshot)."""

    data: bytes
    parent_version: int | None = None
    base_version: int | None = None


@dataclass(frozen=True)
class _Published:
    """The last published state, what the next delta is computed against."""

    link: Link
    state_dict: dict[str, torch.Tensor]
    base_version: int
    full_bytes: int  # a full file of this state
    chain_bytes: int  # the deltas since the base, this one's included
    chain_length: int


class DeltaWriter:
    """Chooses a full or a delta file for each serving snapshot of one run.

    max_chain: deltas at most between two full snapshots (0: every snapshot full).
    """

    def __init__(self, max_chain: int) -> None:
        self.max_chain = max_chain
        self.previous: _Published | None = None

    def encode(self, serving: dict[str, Any]) -> Encoded:
        """The file for serving: a delta of the last published state when it is cheaper."""
        prev = self.previous
        state = serving.get(STATE_DICT)
        if prev is None or not isinstance(state, dict) or prev.chain_length >= self.max_chain:
            return Encoded(encode_state(serving))
        try:
            changes = diff(prev.state_dict, state)
        except SnapshotStoreError:
            return Encoded(encode_state(serving))  # another model's shape: start a new chain
        data = encode_state(delta_payload(serving, changes, prev.link))
        if prev.chain_bytes + len(data) > prev.full_bytes:
            return Encoded(encode_state(serving))
        return Encoded(data, prev.link.version, prev.base_version)

    def published(self, link: Link, serving: dict[str, Any], encoded: Encoded) -> None:
        """Remember what was just published (a state without a state_dict starts no chain)."""
        state = serving.get(STATE_DICT)
        if not isinstance(state, dict):
            self.previous = None
            return
        prev = self.previous
        if encoded.parent_version is None or prev is None:
            self.previous = _Published(link, state, link.version, len(encoded.data), 0, 0)
            return
        self.previous = _Published(
            link,
            state,
            prev.base_version,
            prev.full_bytes,
            prev.chain_bytes + len(encoded.data),
            prev.chain_length + 1,
        )

    def resumed(self, links: dict[int, Link], version: int, serving: dict[str, Any]) -> None:
        """Continue the chain of a loaded snapshot (a trainer's resume)."""
        state = serving.get(STATE_DICT)
        chain = [links[version]]
        while chain[-1].parent is not None:
            chain.append(links[chain[-1].parent])  # loaded: every link is there
        if not isinstance(state, dict):
            self.previous = None
            return
        sizes = [Path(link.path).stat().st_size for link in chain]
        self.previous = _Published(
            links[version],
            state,
            chain[-1].version,
            sizes[-1],
            sum(sizes[:-1]),
            len(chain) - 1,
        )


def unloadable(run: str, rows: list[Snapshot]) -> list[Snapshot]:
    """The rows (in version order) whose file is gone, or a link of whose delta chain is."""
    gone: dict[int, Snapshot] = {}
    present = {row.version for row in rows}
    for row in rows:
        if not Path(row.path).is_file():
            log.warning("snapshot row without a file removed run=%s version=%d path=%s",
                        run, row.version, row.path)  # fmt: skip
            gone[row.version] = row
        elif row.parent_version is not None and (
            row.parent_version in gone or row.parent_version not in present
        ):
            log.warning("delta snapshot without its parent v%s removed run=%s version=%d",
                        row.parent_version, run, row.version)  # fmt: skip
            gone[row.version] = row
    return list(gone.values())
