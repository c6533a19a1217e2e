"""The `--device` option of every command that trains or scores a model.

cpu (the default), cuda, or auto: cuda when torch finds a GPU, else cpu. Asking for cuda
on a machine without one is an error (exit 2) before anything starts. Snapshots are saved
with CPU tensors whatever the device, so a model trained on a GPU loads anywhere.

>>> resolve_device(DEFAULT_DEVICE)
device(type='cpu')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import tyro

from ops.errors import ConfigError

if TYPE_CHECKING:  # imported where it runs: `--help` needs no torch
    import torch

DEVICES = ("cpu", "cuda", "auto")
DeviceName = Literal["cpu", "cuda", "auto"]
DEFAULT_DEVICE: DeviceName = "cpu"

# A command's field `device: Device = DEFAULT_DEVICE`.
Device = Annotated[
    DeviceName,
    tyro.conf.arg(help="where the model runs (auto: cuda if torch finds a GPU, else cpu)"),
]


def resolve_device(name: str) -> torch.device:
    """The torch device of a `--device` value; ConfigError for cuda without a GPU."""
    import torch

    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda: torch finds no CUDA device on this machine "
            f"(torch {torch.__version__}); use --device cpu or auto"
        )
    return torch.device(name)
