"""The README and docs/ against the code: every `mmn` command line parses, every path exists.

Command lines in ```sh blocks are parsed whole by the real parser (`ops.cli.parse_command`,
nothing is run); command fragments in inline code (`mmn train --lr auto`) name a command
that must exist, with options it has. Every option a document names must be one the command
declares under exactly that name (a parser might also take a prefix of a renamed one).
Paths (`ops/cli/main.py`), dotted names (`ops.training.lr_search`, `model.zoo.names`) and
links between the pages must exist.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from ops.cli import parse_command

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGES = ("simulator", "streaming", "model", "ops")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
SLASH_PATH = re.compile(r"\b(?:simulator|streaming|model|ops|tests)/[\w./-]*\w/?")
DOTTED = re.compile(r"\b(?:simulator|streaming|model|ops)(?:\.[A-Za-z_]\w*)+")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def page_text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def code_spans(text: str) -> list[str]:
    """Every piece of code of a page: inline code and the contents of fenced blocks."""
    return INLINE.findall(FENCE.sub("", text)) + [m.group(2) for m in FENCE.finditer(text)]


def shell_lines(text: str) -> list[str]:
    """The lines of every ```sh block, continuation lines joined."""
    lines = []
    for match in FENCE.finditer(text):
        if match.group(1) == "sh":
            lines += match.group(2).replace("\\\n", " ").splitlines()
    return lines


def mmn_args(code: str) -> list[str] | None:
    """The arguments after `mmn` in a piece of shell, or None when it runs no `mmn`."""
    tokens = shlex.split(code, comments=True)
    for i, token in enumerate(tokens):
        if token == "mmn" or token.endswith("/mmn"):
            return tokens[i + 1 :]
    return None


def commands() -> list[tuple[str, list[str], bool]]:
    """(where, arguments, whole) of every documented `mmn` command; `--help` ones left out."""
    found = []
    for page in PAGES:
        text = page_text(page)
        for line in shell_lines(text):
            args = mmn_args(line)
            if args and "--help" not in args:
                found.append((f"{page.name}: {line.strip()}", args, True))
        for code in INLINE.findall(FENCE.sub("", text)):
            args = mmn_args(code) if code.startswith("mmn ") else None
            if args and "--help" not in args and "..." not in args:
                found.append((f"{page.name}: `{code}`", args, False))
    return found


def variants(args: list[str]) -> list[list[str]]:
    """`report show|compare|delete` as three commands."""
    out: list[list[str]] = [[]]
    for token in args:
        choices = token.split("|") if not token.startswith("-") and "|" in token else [token]
        out = [head + [choice] for head in out for choice in choices]
    return out


def command_path(args: list[str]) -> list[str]:
    """The sub-command words: the leading lower-case words (an upper-case one is a placeholder)."""
    path = []
    for token in args:
        if token.startswith("-") or not token.islower():
            break
        path.append(token)
    return path


def run_parser(args: list[str]) -> tuple[int | None, str]:
    """Parse args with the real parser: (exit code or None when it parsed, what it printed)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            parse_command(args, {})
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue() + err.getvalue()
    return None, ""


@pytest.fixture(autouse=True)
def no_mmn_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options come from the documents alone, not from MMN_* variables of the test's shell."""
    for name in [n for n in os.environ if n.startswith("MMN_")]:
        monkeypatch.delenv(name)


COMMANDS = commands()


def test_the_pages_document_commands() -> None:
    assert len(PAGES) >= 6 and sum(whole for _, _, whole in COMMANDS) >= 20


@pytest.mark.parametrize(("where", "args", "whole"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_command_parses(where: str, args: list[str], whole: bool) -> None:
    for command in variants(args):
        path = command_path(command)
        code, help_text = run_parser([*path, "--help"])
        assert code == 0, f"{where}: `mmn {' '.join(path)}` is no command: {help_text.strip()}"
        for flag in {t.split("=")[0] for t in command if t.startswith("--")}:
            declared = re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text)
            assert declared, f"{where}: `mmn {' '.join(path)}` has no option {flag}"
        if whole:
            code, error = run_parser(command)
            assert code is None, f"{where}: the parser refuses it: {error.strip()}"


def test_named_paths_exist() -> None:
    missing = []
    for page in PAGES:
        paths = {path for code in code_spans(page_text(page)) for path in SLASH_PATH.findall(code)}
        for path in paths:
            if not (ROOT / path).exists():
                missing.append(f"{page.name}: {path}")
        for target in set(LINK.findall(page_text(page))):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name}: link {target}")
    assert not missing, missing


def resolves(dotted: str) -> bool:
    """Whether a dotted name is a module of the project, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def test_named_modules_exist() -> None:
    names = {
        (page.name, name)
        for page in PAGES
        for code in code_spans(page_text(page))
        for name in DOTTED.findall(code)
    }
    assert names, "no dotted module name found"
    missing = [f"{page}: {name}" for page, name in sorted(names) if not resolves(name)]
    assert not missing, missing


def test_readme_and_pages_stay_within_their_length() -> None:
    """The README is a front door (<= 250 lines); each page of docs/ one topic (<= 400)."""
    long = [
        f"{page.relative_to(ROOT)}: {lines} lines"
        for page in PAGES
        if (lines := len(page.read_text().splitlines()))
        > (250 if page.name == "README.md" else 400)
    ]
    assert long == []
