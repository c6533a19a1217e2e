"""Delta snapshots: a serving snapshot stored as what changed since its parent.

A serving file whose payload has a `delta` instead of a `state_dict` holds, per tensor of
the model's state, only what differs bit for bit from its parent snapshot's state:

    "delta": {"parent_version": int, "parent_sha256": str,
              "tensors": {name: {"rows": int64 (K,), "values": (K, ...)}   changed rows
                          or {"full": tensor}}}                            whole tensor

A tensor absent from "tensors" is the parent's, unchanged; "rows" are indices along the
first dimension (an embedding table's touched rows, an MMN tower set's changed types);
"full" is kept where the rows would cost as much. The rest of the payload (config,
vocabularies, featurizer, score rule, extra) is stored whole: it is small.

Loading version v walks its parents back to a full snapshot (its base) and applies the
chain forward: the state equals the trainer's at v bit for bit, because every stored value
is the trainer's own bits and every omitted one equals the parent's. A link that is missing
from the registry, whose file is gone or does not verify, or whose parent is not the one
it was computed against (`parent_sha256`) fails the load with an error naming it, never
with other weights.

>>> import torch
>>> old = {"emb": torch.zeros(4, 2), "bias": torch.zeros(1)}
>>> new = {"emb": old["emb"].clone().index_fill_(0, torch.tensor([2]), 1.0), "bias": old["bias"]}
>>> changes = diff(old, new)
>>> sorted(changes), changes["emb"]["rows"].tolist()
(['emb'], [2])
>>> all(torch.equal(apply(old, changes)[k], new[k]) for k in new)
True
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ops.errors import SnapshotCorruptError, SnapshotStoreError

DELTA = "delta"
STATE_DICT = "state_dict"
INDEX_BYTES = 8  # an int64 row index


@dataclass(frozen=True)
class Link:
    """One registered serving file of a run, as a chain sees it (parent None: a full one)."""

    version: int
    path: str
    sha256: str
    parent: int | None = None


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bits as a (rows, bytes per row) uint8 view, for a bitwise comparison."""
    flat = tensor.detach().contiguous().reshape(tensor.shape[0] if tensor.dim() else 1, -1)
    return flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)


def diff(previous: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor]) -> dict:
    """The tensors of current that differ bit for bit from previous: changed rows, or whole.

    Both must hold the same names, shapes and dtypes (one model's states).
    """
    if previous.keys() != current.keys():
        raise SnapshotStoreError(
            f"a delta needs the same tensors: {sorted(previous.keys() ^ current.keys())} differ"
        )
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, tensor in current.items():
        before = previous[name]
        if before.shape != tensor.shape or before.dtype != tensor.dtype:
            out[name] = {"full": tensor}
            continue
        if tensor.dim() == 0 or tensor.numel() == 0:
            if not torch.equal(_bytes(before), _bytes(tensor)):
                out[name] = {"full": tensor}
            continue
        changed = (_bytes(before) != _bytes(tensor)).any(dim=1).nonzero().flatten()
        if len(changed) == 0:
            continue
        row_bytes = tensor[0].numel() * tensor.element_size()
        if len(changed) * (row_bytes + INDEX_BYTES) < tensor.numel() * tensor.element_size():
            out[name] = {"rows": changed, "values": tensor[changed].clone()}
        else:
            out[name] = {"full": tensor}
    return out


def apply(base: Mapping[str, torch.Tensor], changes: Mapping[str, Any]) -> dict:
    """The state a delta's changes make of its parent's (base is not modified: a changed
    tensor is a new one, an unchanged one is shared)."""
    out = dict(base)
    for name, change in changes.items():
        if name not in out:
            raise SnapshotCorruptError(f"a delta changes tensor {name!r}, which its parent lacks")
        if "full" in change:
            out[name] = change["full"]
            continue
        rows, values = change["rows"], change["values"]
        target = out[name]
        if values.shape[1:] != target.shape[1:] or values.dtype != target.dtype:
            raise SnapshotCorruptError(
                f"a delta's rows of {name!r} are {tuple(values.shape)} {values.dtype}, its "
                f"parent's tensor {tuple(target.shape)} {target.dtype}"
            )
        out[name] = target.clone().index_copy_(0, rows, values)
    return out


def delta_payload(serving: Mapping[str, Any], changes: dict, parent: Link) -> dict[str, Any]:
    """The payload of a delta serving file: serving's small parts and the changes."""
    payload = {k: v for k, v in serving.items() if k != STATE_DICT}
    payload[DELTA] = {
        "parent_version": parent.version,
        "parent_sha256": parent.sha256,
        "tensors": changes,
    }
    return payload


class StateCache:
    """Resolved states by version (the few most recent), so that loading v+1 after v applies
    one delta instead of the whole chain. States are never modified in place: shared."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._states: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()

    def get(self, key: tuple[str, int]) -> dict[str, Any] | None:
        found = self._states.get(key)
        if found is not None:
            self._states.move_to_end(key)
        return found

    def put(self, key: tuple[str, int], state: dict[str, Any]) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.size:
            self._states.popitem(last=False)


def resolve(
    links: Mapping[int, Link],
    version: int,
    read: Callable[[Link], dict[str, Any]],
    *,
    run: str = "",
    cache: StateCache | None = None,
) -> dict[str, Any]:
    """The full serving payload of version: its base's, with the chain's deltas applied.

    links: the run's registered serving files by version; read: a file's verified payload.
    """
    chain: list[Link] = []
    start: dict[str, Any] | None = None
    wanted = version
    while True:
        link = links.get(wanted)
        if link is None:
            needed_by = f", a link of v{version}'s chain," if wanted != version else ""
            raise SnapshotStoreError(
                f"snapshot v{wanted} of run {run!r}{needed_by} is not registered: the delta "
                f"chain of v{version} is broken and it cannot be loaded"
            )
        start = None if cache is None else cache.get((run, wanted))
        if start is not None:
            break
        chain.append(link)
        if link.parent is None:
            break
        wanted = link.parent
    state: dict[str, Any] | None = start
    for link in reversed(chain):
        state = _step(state, read(link), link, links, run)
    assert state is not None
    if cache is not None:
        # Only the version asked for: the links on its way would push out the states of
        # other runs, whose next versions then walk their whole chains again (measured: an
        # evaluator of two arms read each snapshot file 9 times).
        cache.put((run, version), state)
    return state


def _step(
    parent: dict[str, Any] | None,
    payload: dict[str, Any],
    link: Link,
    links: Mapping[int, Link],
    run: str,
) -> dict[str, Any]:
    """The full payload of link from its parent's full payload and its own file's."""
    delta = payload.get(DELTA)
    if parent is None:
        if delta is not None:
            raise SnapshotCorruptError(
                f"snapshot {link.path} of run {run!r} is a delta, but the registry records it "
                "as a full snapshot"
            )
        return payload
    if delta is None:
        raise SnapshotCorruptError(
            f"snapshot {link.path} of run {run!r} is full, but the registry records it as a "
            f"delta of v{link.parent}"
        )
    assert link.parent is not None
    expected = links[link.parent]
    if delta["parent_version"] != expected.version or delta["parent_sha256"] != expected.sha256:
        raise SnapshotCorruptError(
            f"snapshot {link.path} of run {run!r} is a delta of v{delta['parent_version']} "
            f"(sha256 {delta['parent_sha256'][:12]}), not of the registered "
            f"v{expected.version} (sha256 {expected.sha256[:12]})"
        )
    full = {k: v for k, v in payload.items() if k != DELTA}
    full[STATE_DICT] = apply(parent[STATE_DICT], delta["tensors"])
    return full
