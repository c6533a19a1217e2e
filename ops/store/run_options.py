"""A run's options across restarts: the differences between the stored and the new ones.

A run is started with a configuration (the learner's, stored as `Run.config`). Resuming
it with other options would silently keep the snapshot's, so a restart compares them and
refuses every difference the caller does not accept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ops.errors import ConfigError


def config_differences(
    old: dict[str, Any], new: dict[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs, in key order.

    >>> config_differences({"lr": 0.01, "m": {"hidden": [8]}}, {"lr": 0.02, "m": {"hidden": (8,)}})
    [('lr', 0.01, 0.02)]
    """
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif _plain(a) != _plain(b):
            out.append((f"{prefix}{key}", a, b))
    return out


def _plain(value: Any) -> Any:
    # A JSON column gives lists back where the config had tuples.
    return list(value) if isinstance(value, tuple) else value


def check_run_options(
    run: str,
    stored: dict[str, Any],
    new: dict[str, Any],
    reconfigurable: Callable[[str], bool] | None,
) -> str:
    """The accepted differences as one line ("" when none); ConfigError for refused ones.

    reconfigurable: which dotted keys may change; None: no difference is accepted.

    >>> check_run_options("r", {"lr": 0.01}, {"lr": 0.02}, None)
    Traceback (most recent call last):
    ...
    ops.errors.ConfigError: run 'r' was started with other options (lr: 0.01 -> 0.02); restart it with the same options, or pass --reconfigure to accept the new ones
    >>> check_run_options("r", {"lr": 0.01}, {"lr": 0.02}, lambda key: key == "lr")
    'lr: 0.01 -> 0.02'
    """
    changed = config_differences(stored, new)
    shown = "; ".join(f"{key}: {old!r} -> {value!r}" for key, old, value in changed)
    if not changed:
        return ""
    if reconfigurable is None:
        raise ConfigError(
            f"run {run!r} was started with other options ({shown}); restart it with "
            "the same options, or pass --reconfigure to accept the new ones"
        )
    fixed = [key for key, _, _ in changed if not reconfigurable(key)]
    if fixed:
        raise ConfigError(
            f"run {run!r} cannot change {', '.join(fixed)} ({shown}): its snapshots hold "
            "a model of the old shape and state; start another --run"
        )
    return shown
