"""The `mmn` command: its entry point (`ops.cli.main`) and one module per sub-command."""

from ops.cli.main import main, parse_command

__all__ = ["main", "parse_command"]
