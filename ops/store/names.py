"""Names an operator gives (runs, experiments): one rule, because they become folder names.

A name is 1-100 letters, digits, `-`, `_` or `.`, starting with a letter or digit: never a
path (`..`, `/`), never hidden, the same on every file system.

>>> check_name("--run", "mmn-a.v2")
'mmn-a.v2'
>>> check_name("--run", "../../etc/evil")
Traceback (most recent call last):
...
ops.errors.ConfigError: --run '../../etc/evil': a name is 1-100 letters, digits, '-', '_' or '.', starting with a letter or digit
"""

from __future__ import annotations

import re

from ops.errors import ConfigError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(option: str, name: str) -> str:
    """name if it is a valid run or experiment name; otherwise ConfigError naming `option`."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ConfigError(
            f"{option} {name!r}: a name is 1-100 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name
