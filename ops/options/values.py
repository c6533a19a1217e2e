"""Option values that are more than a Python type: durations, ports, counts, lists.

Each is a parse function (text -> value, ValueError with the reason otherwise) and a type
for a command's field, `Annotated` with how tyro parses it and shows its default:

>>> duration_s("15m"), format_duration(5400)
(900, '90m')
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from tyro.constructors import PrimitiveConstructorSpec

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def option_type(
    metavar: str, parse: Callable[[str], Any], show: Callable[[Any], str] = str
) -> PrimitiveConstructorSpec:
    """How tyro reads one value with `parse` and shows a default with `show` (None: none)."""
    return PrimitiveConstructorSpec(
        nargs=1,
        metavar=metavar,
        instance_from_str=lambda args: parse(args[0]),
        is_instance=lambda value: True,
        str_from_instance=lambda value: ["none" if value is None else show(value)],
    )


def duration_s(text: str) -> int:
    """Seconds of a duration like 90, 90s, 15m, 1h or 2d (negative values are kept, for
    the config to refuse with its own rule).

    >>> [duration_s(t) for t in ("90", "15m", "1h", "2d", "-1h")]
    [90, 900, 3600, 172800, -3600]
    """
    match = re.fullmatch(r"(-?\d+)([smhd]?)", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 3600, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: 86400 -> 1d, 5400 -> 90m.

    >>> [format_duration(s) for s in (86400, 3600, 5400, 45, 0)]
    ['1d', '1h', '90m', '45s', '0s']
    """
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def at_least(low: int) -> Callable[[str], int]:
    """An integer >= low.

    >>> at_least(1)("3")
    3
    >>> at_least(1)("0")
    Traceback (most recent call last):
    ...
    ValueError: must be an integer >= 1, got '0'
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise ValueError(f"must be an integer >= {low}, got {text!r}")
        return value

    return parse


def port_number(text: str) -> int:
    """A TCP port, 0..65535 (0: a free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ValueError(f"must be a TCP port 0..65535, got {text!r}")
    return value


def comma_list(item: type) -> Callable[[str], tuple]:
    """A comma-separated list: `mmn,esmm` -> ('mmn', 'esmm')."""

    def parse(text: str) -> tuple:
        try:
            return tuple(item(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a comma-separated list of {item.__name__}") from None

    return parse


def number_or(number: type, words: tuple[str, ...]) -> Callable[[str], Any]:
    """A number or one of some words (`--lr auto`)."""

    def parse(text: str) -> Any:
        if text in words:
            return text
        try:
            return number(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither a number nor {' or '.join(words)}") from None

    return parse


def one_of(words: tuple[str, ...]) -> PrimitiveConstructorSpec:
    """One of some words known only at run time (a registry's names)."""

    def parse(text: str) -> str:
        if text not in words:
            raise ValueError(f"invalid choice {text!r} (choose from {', '.join(words)})")
        return text

    return option_type("{" + ",".join(words) + "}", parse)


def output_file(text: str) -> Path:
    """A file a command writes (`OutputFile`): checked before the command does any work.

    Not a folder; its folder (created with its parents when missing, as the writers do)
    must be creatable and writable: the nearest existing one a folder we can write.

    >>> output_file("/proc/self/x.csv")
    Traceback (most recent call last):
    ...
    ValueError: /proc/self/x.csv: cannot write into /proc/self
    """
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a file")
    if (why := unwritable(path.parent)) is not None:
        raise ValueError(f"{path}: {why}")
    return path


def unwritable(folder: Path) -> str | None:
    """Why nothing can be made under folder (its nearest existing ancestor must be a folder
    this process may write into), None if it can."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK) or existing.parts[:2] == ("/", "proc"):
        return f"cannot write into {existing}"
    return None


# A command's field `html: OutputFile = None`: a file it writes, checked at parse time.
OutputFile = Annotated[Path | None, option_type("FILE", output_file)]


def _show_list(value: tuple) -> str:
    return ",".join(str(v) for v in value) or "none"


DURATION = option_type("DURATION", duration_s, format_duration)
OptionalSeconds = Annotated[int | None, DURATION]
Port = Annotated[int, option_type("PORT", port_number)]
Count = Annotated[int, option_type("N", at_least(1))]
OptionalCount = Annotated[int | None, option_type("N", at_least(1))]
CountOrZero = Annotated[int, option_type("N", at_least(0))]


def list_of(item: type) -> PrimitiveConstructorSpec:
    """A comma-separated list of item, shown the same way."""
    return option_type(f"{_METAVARS.get(item, 'TEXT')},...", comma_list(item), _show_list)


_METAVARS: dict[type, str] = {int: "N", float: "X", str: "TEXT"}
