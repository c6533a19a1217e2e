"""The help of an `mmn` command as the user sees it, split into one text per option."""

from __future__ import annotations

import contextlib
import io
import re

from ops.options.typed import Entry, parse


def help_text(path: tuple[str, ...], entry: Entry) -> str:
    """What `mmn <path> --help` prints (exit 0)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parse(entry.options, ["--help"], "mmn " + " ".join(path), {})
    return out.getvalue()


def option_texts(text: str) -> dict[str, str]:
    """--flag -> its whole entry in a help text (flags, metavar, help, default)."""
    found: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        start = re.match(r"^ {1,3}(--[\w-]+)", line)
        if start:
            current = start.group(1)
            found[current] = line.strip()
        elif not line.startswith(" ") or not line.strip() or set(line.strip()) == {"-"}:
            current = None
        elif current:
            found[current] += " " + line.strip()
    return found
