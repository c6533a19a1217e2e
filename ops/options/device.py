"""The `--device` option of every command that trains or scores a model.

cpu (the default), cuda, or auto: cuda when torch finds a GPU, else cpu. Asking for cuda
on a machine without one is an error (exit 2) before anything starts. Snapshots are saved
with CPU tensors whatever the device, so a model trained on a GPU loads anywhere.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_device_option(parser)
>>> resolve_device(parser.parse_args([]).device)
device(type='cpu')
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ops.errors import ConfigError

if TYPE_CHECKING:  # imported where it runs: `--help` needs no torch
    import torch

DEVICES = ("cpu", "cuda", "auto")
DEFAULT_DEVICE = "cpu"


def add_device_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add `--device {cpu,cuda,auto}` (resolved by `resolve_device`)."""
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=DEFAULT_DEVICE,
        help=f"where the model runs (default: {DEFAULT_DEVICE}; auto: cuda if torch finds a "
        "GPU, else cpu)",
    )


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
