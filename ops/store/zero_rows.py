"""Checkpoint tensors stored without their all-zero rows.

An optimizer's per-row state (Adagrad's sum of squared gradients) is zero in every row its
parameter has never had a gradient for: most of an embedding table's rows on a short
stream. `pack` replaces every tensor of a nested payload whose zero rows are the majority
by its nonzero rows and their indices; `unpack` rebuilds it. Only rows whose bytes are all
zero are left out (+0.0, never -0.0), so the rebuilt tensor is the original bit for bit,
and a payload written without packing unpacks as it is.

>>> import torch
>>> state = {"sum": torch.zeros(600, 2).index_fill_(0, torch.tensor([4]), 2.0), "step": 3}
>>> packed = pack(state)
>>> packed["sum"][MARK], torch.equal(unpack(packed)["sum"], state["sum"])
(True, True)
"""

from __future__ import annotations

from typing import Any

import torch

MARK = "__zero_rows_left_out__"  # a key no optimizer or trainer state uses


def pack(value: Any) -> Any:
    """value with each mostly-zero tensor (by rows) stored as its nonzero rows."""
    if isinstance(value, torch.Tensor):
        return _pack_tensor(value)
    if isinstance(value, dict):
        return {k: pack(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(pack(v) for v in value)
    return value


def unpack(value: Any) -> Any:
    """The value `pack` was given."""
    if isinstance(value, dict):
        if value.get(MARK) is True:
            out = torch.zeros(value["shape"], dtype=value["values"].dtype)
            return out.index_copy_(0, value["rows"], value["values"])
        return {k: unpack(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(unpack(v) for v in value)
    return value


def _pack_tensor(tensor: torch.Tensor) -> Any:
    if tensor.dim() == 0 or tensor.numel() < 1024 or tensor.is_sparse:
        return tensor
    flat = tensor.detach().contiguous().reshape(tensor.shape[0], -1)
    bits = flat.view(torch.uint8) if flat.dtype != torch.bool else flat.to(torch.uint8)
    rows = bits.any(dim=1).nonzero().flatten()
    if 2 * len(rows) > tensor.shape[0]:
        return tensor
    return {MARK: True, "shape": list(tensor.shape), "rows": rows, "values": tensor[rows]}
