"""The `mmn` command: its entry point (`ops.cli.main`) and one module per sub-command."""

from ops.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
