"""Command-line options derived from the components' config dataclasses.

A default lives in one place, the config dataclass; its documentation lives in the class
docstring (`name: what it is.`). `add_options` turns chosen fields of a config class into
options (flag from the field name, help text from the docstring, type from the annotation,
default from the field), and `build` turns the parsed values back into the config, whose
`__post_init__` validates them. A field whose name ends in `_s` is a duration in seconds
and accepts `90`, `90s`, `15m`, `1h` or `2d`.

Validation messages name the field as `ClassName.field`; `build` rewrites that to the
option's flag, so a user reads `--batch-span must be >= 1 second` rather than a field name.

Every option of every command can also be set by an environment variable, `MMN_` and the
option's long name upper-cased with `-` as `_` (`--bootstrap` <- `MMN_BOOTSTRAP`): that is
how a container is configured. The command line wins over the environment.

>>> import argparse
>>> from streaming.labels import LabelConfig
>>> parser = argparse.ArgumentParser()
>>> labels = add_options(parser, LabelConfig)
>>> build(parser.parse_args(["--observation-window", "2h"]), labels).observation_window_s
7200
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import PROJECT_ERRORS, ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ENV_PREFIX = "MMN_"


def duration_s(text: str) -> int:
    """Seconds of a duration like 90, 90s, 15m, 1h or 2d (negative values are kept, for
    the config to refuse with its own rule).

    >>> [duration_s(t) for t in ("90", "15m", "1h", "2d", "-1h")]
    [90, 900, 3600, 172800, -3600]
    """
    match = re.fullmatch(r"(-?\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= low, for options that no config class declares.

    >>> at_least(1)("3")
    3
    >>> at_least(1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 1, got '0'
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


# Torch intra-op threads of the daemons that score or train small batches: on a 39-row
# MMN call one thread took 9 ms and two 63 ms under load (issue 20), and every extra
# thread competes with the pipeline's other processes for the same cores.
TORCH_THREADS = 1


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """The `--threads` option of a daemon that runs torch (applied by its run())."""
    parser.add_argument(
        "--threads",
        type=at_least(1),
        default=TORCH_THREADS,
        metavar="N",
        help=f"torch intra-op threads (default: {TORCH_THREADS}; small batches gain nothing "
        "from more, and they take cores from the other processes)",
    )


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0..65535 (0: a free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 0..65535, got {text!r}")
    return value


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: 86400 -> 1d, 5400 -> 90m.

    >>> [format_duration(s) for s in (86400, 3600, 5400, 45, 0)]
    ['1d', '1h', '90m', '45s', '0s']
    """
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text in a config class docstring (`name: text.`, `a / b: text.`).

    >>> from streaming.segments import BatchConfig
    >>> field_docs(BatchConfig)["batch_size"]
    'most examples per mini-batch'
    """
    doc = (cls.__doc__ or "").split("\n\n", 1)[-1]
    names = "|".join(re.escape(f.name) for f in dataclasses.fields(cls))
    head = rf"(?:(?<=\n)|(?<=^)|(?<=\. ))\s*((?:{names})(?:\s*[/,]\s*(?:{names}))*):\s"
    docs: dict[str, str] = {}
    starts = list(re.finditer(head, doc))
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        text = doc[match.end() : following.start() if following else len(doc)]
        for name in re.split(r"\s*[/,]\s*", match.group(1)):
            docs[name] = " ".join(text.split()).rstrip(".")
    return docs


@dataclass(frozen=True)
class _Option:
    field: str
    flag: str
    dest: str
    parse: Callable[[Any], Any]


@dataclass(frozen=True)
class ConfigOptions:
    """The options `add_options` made for one config class, to `build` it back."""

    cls: type
    options: tuple[_Option, ...]

    def flag(self, field: str) -> str:
        return next(o.flag for o in self.options if o.field == field)


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    flags: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    dest_prefix: str = "",
) -> ConfigOptions:
    """Add an option per field of `cls` (`only` these, minus `skip`) to `parser`.

    flags: field -> long option name where the derived one (field name, `_s` dropped,
        `_` as `-`) does not read well. defaults: a default for a field that has none in
        the class (a required field stays required otherwise).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    chosen = set(only) if only is not None else None
    made = []
    for field in dataclasses.fields(cls):
        if (chosen is not None and field.name not in chosen) or field.name in skip:
            continue
        if field.name not in docs:
            raise ConfigError(f"{cls.__name__}.{field.name} has no line in the class docstring")
        flag = (flags or {}).get(field.name) or re.sub(r"_s$", "", field.name).replace("_", "-")
        default = _default_of(field, defaults or {})
        seconds = field.name.endswith("_s")
        parse, kwargs = _argument(hints[field.name], default, seconds)
        help_text = _first_sentence(docs[field.name]) + _default_note(default, seconds, kwargs)
        dest = dest_prefix + flag.replace("-", "_")
        required = default is dataclasses.MISSING
        parser.add_argument(
            f"--{flag}",
            dest=dest,
            help=help_text,
            required=required,
            **({} if required else {"default": default}),
            **kwargs,
        )
        made.append(_Option(field=field.name, flag=f"--{flag}", dest=dest, parse=parse))
    return ConfigOptions(cls=cls, options=tuple(made))


def build(args: argparse.Namespace, options: ConfigOptions, **given: Any) -> Any:
    """The config from parsed options, `given` fields overriding; a broken rule names the flag."""
    values = {o.field: o.parse(getattr(args, o.dest)) for o in options.options}
    values.update(given)
    try:
        return options.cls(**values)
    except PROJECT_ERRORS as exc:
        message = str(exc)
        for o in options.options:
            message = re.sub(rf"\b{options.cls.__name__}\.{o.field}\b", o.flag, message)
        raise ConfigError(message) from exc


def class_default(cls: type, name: str) -> Any:
    """The default a config class declares for one field."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return _default_of(field, {})


def _default_of(field: dataclasses.Field, defaults: Mapping[str, Any]) -> Any:
    if field.name in defaults:
        return defaults[field.name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def _argument(hint: Any, default: Any, seconds: bool) -> tuple[Callable[[Any], Any], dict]:
    """How to parse one field: a converter for the parsed value and add_argument kwargs."""
    args = typing.get_args(hint)
    words = [w for a in args if typing.get_origin(a) is typing.Literal for w in typing.get_args(a)]
    if words:  # a number or one of some words (`--lr auto`)
        number = next(a for a in args if a in (int, float))
        return _keep, {"type": _number_or(number, words), "metavar": f"X|{'|'.join(words)}"}
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if base is bool:
        return bool, {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        return _keep, {"type": _comma_list(item), "metavar": f"{_METAVARS[item]},..."}
    if seconds:
        return _keep, {"type": duration_s, "metavar": "DURATION"}
    if base in (int, float, str, Path):
        return _keep, {"type": base, "metavar": _METAVARS[base]}
    raise ConfigError(f"no command-line form for a field of type {hint}")


def _number_or(number: type, words: list[str]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text in words:
            return text
        try:
            return number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a number nor {' or '.join(words)}"
            ) from None

    return parse


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[a-z)])\. (?=[A-Z])", text, maxsplit=1)[0]


_METAVARS: dict[type, str] = {int: "N", float: "X", str: "TEXT", Path: "PATH"}


def _keep(value: Any) -> Any:
    return value


def _comma_list(item: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            return tuple(item(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a comma-separated list of {item.__name__}"
            ) from None

    return parse


def _default_note(default: Any, seconds: bool, kwargs: dict) -> str:
    if default is dataclasses.MISSING:
        return " (required)"
    if kwargs.get("action") is argparse.BooleanOptionalAction:
        return ""  # argparse's BooleanOptionalAction prints the default itself
    return f" (default: {_show(default, seconds)})"


def _show(value: Any, seconds: bool) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    if seconds:
        return format_duration(value)
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows every option's default (those not declared through a config too)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        skip = "default" in text or "(required)" in text or action.default is argparse.SUPPRESS
        if skip or not action.option_strings:
            return text
        if action.nargs == 0:
            return f"{text} (default: {'on' if action.default else 'off'})"
        return f"{text} (default: {_show(action.default, False)})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: `mmn train: error: ...`, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Set option defaults from `MMN_*` variables, in parser and all its sub-parsers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                apply_environment(sub, environ)
            continue
        long = next((s for s in action.option_strings if s.startswith("--")), None)
        if long is None or long == "--help":
            continue
        name = env_name(long)
        if name not in environ:
            continue
        text = environ[name]
        if action.nargs == 0:
            value: Any = text.strip().lower() in ("1", "true", "yes", "on")
        elif action.type is not None:
            try:
                value = action.type(text)  # type: ignore[operator]
            except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                parser.error(f"environment variable {name}={text!r}: {exc}")
        else:
            value = text
        action.default = value
        action.required = False


def env_name(flag: str) -> str:
    """The environment variable of a long option.

    >>> env_name("--snapshot-dir")
    'MMN_SNAPSHOT_DIR'
    """
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")
