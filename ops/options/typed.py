"""Typed commands: each `mmn` command is a frozen dataclass that tyro turns into options.

A command's own options are its fields, documented by attribute docstrings; a component's
options come from its config dataclass, nested as a field
`Annotated[Config, offered(Config, ...)]` (some of its fields, or all). tyro writes the parser, the flat flags (no prefixes), `--help`
with every default, and the conversion of each value. What tyro does not know is here:

- flag names: a config field's flag is its name with `_s` dropped (`observation_window_s`
  -> `--observation-window`, a duration: `15m`, `1h`, `2d`), or its entry in RENAMED;
  its help is its line in the class docstring (`name: text.`), where our configs keep it;
- `MMN_*` variables: `MMN_<FLAG>=v` is read as `--flag v` ahead of the command line (tyro
  keeps the last value, so the command line wins); a bad value names the variable;
- one-line usage errors (`mmn join: error: ...`, exit 2) instead of tyro's box, through
  `tyro._errors.on_parse_error`, the hook tyro offers for it (a private module: tyro is
  pinned exactly); a config's own rule is reported with the flag, not the field.

>>> from streaming.labels import LabelConfig
>>> windows = offered(LabelConfig, only=("observation_window_s",))
>>> Example = dataclasses.make_dataclass("Example", [("labels", Annotated[LabelConfig, windows])])
>>> parse(Example, ["--observation-window", "2h"], "mmn x", {}).labels.observation_window_s
7200
"""

from __future__ import annotations

import dataclasses
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

import docstring_parser
import tyro
from tyro import _errors
from tyro.constructors import (
    ConstructorRegistry,
    StructConstructorSpec,
    StructFieldSpec,
    StructTypeInfo,
)

from ops.errors import PROJECT_ERRORS, ConfigError, OptionError, UsageError
from ops.options.values import DURATION, list_of, number_or, option_type

T = TypeVar("T")
ENV_PREFIX = "MMN_"

# Flags that do not read well as their field's name (each config names its field once).
RENAMED = {
    ("BatchConfig", "max_span_s"): "batch-span",
    ("SnapshotStoreConfig", "directory"): "snapshot-dir",
    ("TrainerConfig", "snapshot_every_examples"): "snapshot-every",
    ("TrainerConfig", "snapshot_every_event_s"): "snapshot-every-event-time",
    ("EvaluatorConfig", "flush_every_event_s"): "flush-every",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One command: its help line, its options (a dataclass) and what runs it."""

    help: str
    options: type
    run: Callable[[Any], Any]


def offered(
    cls: type,
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """The mark of a command's field `Annotated[cls, offered(cls, ...)]`: the options of
    cls's fields (`only` these, minus `skip`; `defaults` where the command's default differs
    from the class's). A class with a field that is not offered and has no default is parsed
    into a dict for `complete` (annotate the field `dict[str, Any]`)."""
    names = [f.name for f in dataclasses.fields(cls)]
    chosen = tuple(n for n in names if (not only or n in only) and n not in skip)
    marks = {"__offered__": chosen, "__config__": cls, "__defaults__": dict(defaults or {})}
    marked = type(cls.__name__, (cls,), marks)
    return tyro.conf.arg(constructor=marked)


def _marked(mark: Any) -> Any:
    """The class an `offered` mark stands for (None for any other metadata)."""
    factory = getattr(mark, "constructor_factory", None)
    made = factory() if factory is not None else None
    return made if hasattr(made, "__offered__") else None


def flag_of(cls: type, field: str) -> str:
    """The flag of a config's field: `--` and its name with `_s` dropped, or RENAMED."""
    config = getattr(cls, "__config__", cls)
    name = RENAMED.get((config.__name__, field), field.removesuffix("_s").replace("_", "-"))
    return f"--{name}"


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text in a config class docstring's `Attributes:` section (Google style,
    read by docstring_parser, as tyro reads it), on one line.

    >>> from streaming.segments import BatchConfig
    >>> field_docs(BatchConfig)["batch_size"]
    'most examples per mini-batch'
    """
    found = docstring_parser.parse_from_object(cls).params
    return {p.arg_name: " ".join(p.description.split()).rstrip(".") for p in found if p.description}


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[a-z)])\. (?=[A-Z])", text, maxsplit=1)[0]


def _default_of(field: dataclasses.Field, defaults: Mapping[str, Any]) -> Any:
    if field.name in defaults:
        return defaults[field.name]
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _option_hint(name: str, hint: Any) -> Any:
    """How a config field's value is read: durations, comma lists, a number or words."""
    args = typing.get_args(hint)
    if name.endswith("_s"):
        return Annotated[hint, DURATION]
    if typing.get_origin(hint) is tuple:
        return Annotated[hint, list_of(args[0])]
    words = tuple(w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a))
    if words:
        number = next(a for a in args if a in (int, float))
        return Annotated[hint, option_type(f"X|{'|'.join(words)}", number_or(number, words))]
    return hint


registry = ConstructorRegistry()


@registry.struct_rule
def _config_options(info: StructTypeInfo) -> StructConstructorSpec | None:
    """The options of an `offered` config: flag names, help, parsing, as the module says."""
    cls = info.type
    if not hasattr(cls, "__offered__"):
        return None
    config = cls.__config__
    hints, docs = typing.get_type_hints(config), field_docs(config)
    defaults = {f.name: _default_of(f, cls.__defaults__) for f in dataclasses.fields(config)}
    missing = [n for n in cls.__offered__ if n not in docs]
    if missing:
        raise ConfigError(f"{config.__name__}.{missing[0]} has no line in the class docstring")
    fields = tuple(
        StructFieldSpec(
            name=name,
            type=Annotated[  # type: ignore[arg-type]
                _option_hint(name, hints[name]), tyro.conf.arg(name=flag_of(cls, name)[2:])
            ],
            default=tyro.MISSING if defaults[name] is dataclasses.MISSING else defaults[name],
            helptext=_first_sentence(docs[name]),
        )
        for name in cls.__offered__
    )
    kept = {n: v for n, v in defaults.items() if n not in cls.__offered__}
    if dataclasses.MISSING in kept.values():
        return StructConstructorSpec(instantiate=lambda **given: given, fields=fields)
    return StructConstructorSpec(
        instantiate=lambda **given: complete(cls, {**kept, **given}),
        fields=fields,
    )


def complete(mark: Any, values: Mapping[str, Any], **given: Any) -> Any:
    """The config of an `offered` mark (or a config class) from its parsed values and `given`
    fields; a rule it breaks is an OptionError naming the flag (`mmn` reports it, exit 2)."""
    cls = _marked(mark) or mark
    config = getattr(cls, "__config__", cls)
    try:
        return config(**{**values, **given})
    except PROJECT_ERRORS as exc:
        message = re.sub(
            rf"\b{config.__name__}\.(\w+)\b", lambda m: flag_of(config, m[1]), str(exc)
        )
        raise OptionError(message) from exc


def replace(config: T, **given: Any) -> T:
    """dataclasses.replace for a config of a command; a rule it breaks names the flag."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    result: T = complete(type(config), values, **given)
    return result


def flags(command: type) -> dict[str, Any]:
    """Every option of a command (`--flag` -> its type); positional arguments left out."""
    found: dict[str, Any] = {}
    hints = typing.get_type_hints(command, include_extras=True)
    for field in dataclasses.fields(command):
        hint = hints[field.name]
        metadata = typing.get_args(hint)[1:] if typing.get_origin(hint) is Annotated else ()
        inner = typing.get_args(hint)[0] if metadata else hint
        marked = next((m for m in map(_marked, metadata) if m is not None), None)
        if marked is not None:
            config_hints = typing.get_type_hints(marked.__config__)
            for name in marked.__offered__:
                found[flag_of(marked, name)] = _option_hint(name, config_hints[name])
        elif dataclasses.is_dataclass(inner):
            found.update(flags(inner))  # type: ignore[arg-type]
        elif not _positional(hint):
            found[_own_flag(field.name, hint)] = inner
    return found


def _own_flag(name: str, hint: Any) -> str:
    renamed = [m.name for m in typing.get_args(hint)[1:] if getattr(m, "name", None)]
    return f"--{renamed[0] if renamed else name.replace('_', '-')}"


_POSITIONAL = typing.get_args(tyro.conf.Positional[int])[1]


def _positional(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and _POSITIONAL in typing.get_args(hint)[1:]


def env_name(flag: str) -> str:
    """The environment variable of a long option.

    >>> env_name("--snapshot-dir")
    'MMN_SNAPSHOT_DIR'
    """
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


def environment_args(command: type, environ: Mapping[str, str]) -> list[str]:
    """The `MMN_*` variables a command reads, as arguments to put before the command line."""
    args = []
    for flag, hint in flags(command).items():
        text = environ.get(env_name(flag))
        if text is None:
            continue
        if hint is bool:
            on = text.strip().lower() in ("1", "true", "yes", "on")
            args.append(flag if on else f"--no-{flag[2:]}")
        else:
            args += [flag, text]
    return args


def _line(event: _errors.ParseErrorEvent) -> str:
    """One line for a usage error: the option, and what was wrong with its value."""
    argument = getattr(event, "argument", None)
    name = f"argument {argument.display_name()}: " if argument is not None else ""
    if isinstance(event, _errors.InstantiationFailure):
        return f"{name}{event.message.strip().splitlines()[-1].strip()}"
    if isinstance(event, _errors.BadValue):
        return f"{name}expected a value, got {event.offending_value!r}"
    if isinstance(event, _errors.InvalidChoice):
        return f"{name}invalid choice {event.value!r} (choose from {', '.join(event.choices)})"
    if isinstance(event, _errors.UnrecognizedArgs):
        return f"unrecognized arguments: {' '.join(event.tokens)}"
    if isinstance(event, _errors.MissingArgs):
        names = ", ".join(a.arg.display_name() for a in event.missing_arguments)
        return f"the following arguments are required: {names}"
    return f"cannot parse the command line ({type(event).__name__})"


def _refuse(event: _errors.ParseErrorEvent) -> None:
    raise UsageError(event)  # carried to parse(), which writes the line


def parse(command: type[T], argv: Sequence[str], prog: str, environ: Mapping[str, str]) -> T:
    """The command's options from the environment and argv; a usage error exits 2 with one
    line on stderr."""
    from_env = environment_args(command, environ)
    if from_env:  # the environment alone first: a bad value there names its variable
        try:
            _cli(command, from_env, prog)
        except OptionError:
            pass  # a rule the command line may still satisfy; told after it
        except UsageError as exc:
            event = exc.args[0]
            argument = getattr(event, "argument", None)
            if not isinstance(event, _errors.MissingArgs):
                name = env_name(argument.display_name().split("/")[0]) if argument else ""
                where = f"{name}={environ[name]!r}" if name in environ else "MMN_*"
                _exit(f"{prog}: error: environment variable {where}: {_line(event)}")
    try:
        return _cli(command, [*from_env, *argv], prog)
    except UsageError as exc:
        _exit(f"{prog}: error: {_line(exc.args[0])}")


def _cli(command: type[T], args: list[str], prog: str) -> T:
    config = (tyro.conf.OmitArgPrefixes, tyro.conf.HelptextFromCommentsOff)
    with _errors.on_parse_error(_refuse):
        return tyro.cli(command, args=args, prog=prog, registry=registry, config=config)


def _exit(line: str) -> typing.NoReturn:
    print(line, file=sys.stderr)
    raise SystemExit(2)
