"""A snapshot's files: written atomically; read back verified against the sha256 the registry
recorded, then decoded (`torch.load(weights_only=True)`: plain data and tensors, never
pickled code)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from model.snapshot import write_atomically
from ops.errors import SnapshotCorruptError, SnapshotStoreError


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_snapshot(path: str | Path, sha256: str) -> dict[str, Any]:
    """Read a snapshot file, verify it against the recorded sha256 and decode its payload."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SnapshotStoreError(f"cannot read snapshot {path}: {exc}") from exc
    actual = sha256_of(data)
    if actual != sha256:
        raise SnapshotCorruptError(
            f"snapshot {path} is corrupt: its sha256 is {actual}, the registry recorded {sha256}; "
            "it is not loaded (the previous snapshot is used instead)"
        )
    try:
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for undecodable bytes
        raise SnapshotCorruptError(
            f"snapshot {path} verifies but cannot be decoded: {exc}"
        ) from exc


def write_files(files: dict[Path, bytes | None]) -> list[Path]:
    """Write each file that has bytes atomically, in order; the paths written."""
    written = []
    for path, data in ((p, d) for p, d in files.items() if d is not None):
        try:
            write_atomically(path, data)
        except OSError as exc:
            raise SnapshotStoreError(f"cannot write snapshot {path}: {exc}") from exc
        written.append(path)
    return written
