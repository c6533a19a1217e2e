"""The `mmn` command: one entry point whose sub-commands live in `ops.cli.*`.

Each command module exposes ENTRIES: the words of each of its commands (`("report",
"show")`) -> an Entry (ops.options.typed): its help line, its options (a dataclass that
tyro parses) and the function that runs it with them, returning an exit code. Errors of the
project are printed as one line and exit 2; nothing else is caught.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ops.errors import PROJECT_ERRORS
from ops.options.typed import Entry, parse

# Every command, the module that declares it and its one-line help: `mmn --help` lists
# them without importing any command module, and `mmn X` imports X's module alone (the
# others pull in torch, Faust and SQLAlchemy: seconds of CPU for every process).
# tests/ops/cli/test_cli_main.py checks that each help here is the one its module declares.
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": (
        "ops.cli.broker",
        "run the embedded Kafka-protocol broker (Tansu) in the foreground",
    ),
    "bench": ("ops.cli.bench", "benchmarks (ratios measured in one run)"),
    "data": ("ops.cli.data", "synthesise or profile conversion logs"),
    "replay": ("ops.cli.replay", "replay a conversion log as impressions, clicks and conversions"),
    "join": (
        "ops.cli.join",
        "label impressions/clicks/conversions in event time; emit mini-batches",
    ),
    "train": (
        "ops.cli.train",
        "the online trainer: learn from the minibatches topic, publish snapshots",
    ),
    "runs": ("ops.cli.runs", "training runs in the registry"),
    "snapshots": ("ops.cli.runs", "published snapshots of a run"),
    "demo": (
        "ops.cli.demo",
        "the whole pipeline on a synthetic log, live, ending with the A/B report",
    ),
    "evaluate": (
        "ops.cli.evaluate",
        "score arms with their serving snapshots against final labels (A/B)",
    ),
    "report": ("ops.cli.report", "A/B experiment reports"),
}
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))
DESCRIPTION = "Masked Multi-Domain Network as a streaming online-learning system."


def entries(command: str | None = None) -> dict[tuple[str, ...], Entry]:
    """Every command's entry (None), or those of one command's words."""
    modules = COMMAND_MODULES if command is None else (COMMANDS[command][0],)
    found: dict[tuple[str, ...], Entry] = {}
    for module in modules:
        found.update(importlib.import_module(module).ENTRIES)
    return {path: e for path, e in found.items() if command is None or path[0] == command}


def resolve(argv: Sequence[str]) -> tuple[tuple[str, ...], Entry, list[str]]:
    """The words of argv's command, its entry and the arguments after them; a usage error
    (exit 2, one line) when argv names none, and the listing (exit 0) for `--help`."""
    words = list(argv[: next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))])
    if not words or words[0] not in COMMANDS:
        _listing("mmn", {(name,): text for name, (_, text) in COMMANDS.items()}, argv, words)
    known = entries(words[0])
    for n in range(len(words), 0, -1):
        if tuple(words[:n]) in known:
            return tuple(words[:n]), known[tuple(words[:n])], list(argv[n:])
    prog = f"mmn {words[0]}"
    _listing(prog, {path[1:2]: e.help for path, e in known.items()}, argv, words[1:])
    raise AssertionError("unreachable")


def _listing(
    prog: str, choices: Mapping[tuple[str, ...], str], argv: Sequence[str], words: list[str]
) -> None:
    names = [path[0] for path in choices]
    if words:
        _usage_error(prog, f"unknown command {words[0]!r} (choose from {', '.join(names)})")
    if not {"-h", "--help"} & set(argv):
        _usage_error(prog, f"choose a command: {', '.join(names)}")
    width = max(len(n) for n in names) + 2
    print(f"usage: {prog} COMMAND [OPTIONS]\n\n{DESCRIPTION}\n\ncommands:")
    for path, text in choices.items():
        print(f"  {path[0]:<{width}}{text}")
    raise SystemExit(0)


def _usage_error(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_command(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], Entry, Any]:
    """argv parsed as `mmn` would, nothing run: (its words, its entry, its options)."""
    path, entry, rest = resolve(argv)
    environ = os.environ if environ is None else environ
    return path, entry, parse(entry.options, rest, _prog(path), environ)


def _prog(path: tuple[str, ...]) -> str:
    return "mmn " + " ".join(path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    path, entry, rest = resolve(argv)
    try:
        return int(entry.run(parse(entry.options, rest, _prog(path), os.environ)) or 0)
    except PROJECT_ERRORS as exc:  # a rule of a config an option broke, or the command's error
        print(f"{_prog(path)}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
