"""Output folders a command writes into: never someone else's files.

`--out DIR` of `mmn data synth` and `mmn demo` is claimed with a marker file,
`.mmn-output`, that names the command which made it. A command writes into DIR when DIR
is missing, empty, or carries its own marker; a folder holding anything else (the real
Criteo file, a home folder, `.`) is refused unless `--force` is given. A path that is a
file, or a folder that cannot be created or written, is a one-line error.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> claim_output(root / "synth", "data synth").name
'synth'
>>> claim_output(root / "synth", "data synth").name  # its own folder again
'synth'
>>> claim_output(root / "synth", "demo")
Traceback (most recent call last):
...
ops.errors.ConfigError: --out ...: holds files `mmn demo` did not make (made by `mmn data synth`); choose an empty folder, or pass --force to write into it anyway
"""

from __future__ import annotations

import os
from pathlib import Path

from ops.errors import ConfigError

MARKER = ".mmn-output"


def claim_output(path: Path, command: str, *, force: bool = False) -> Path:
    """Make `path` the output folder of `mmn command`, or refuse it (see the module docstring)."""
    marker = path / MARKER
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path}: is a file, not a folder")
    if path.is_dir() and not force:
        try:
            entries = [p.name for p in path.iterdir()]
        except OSError as exc:
            raise ConfigError(f"--out {path}: cannot be read: {exc.strerror or exc}") from None
        owner = output_owner(path) if MARKER in entries else None
        if entries and owner != command:
            made = f"made by `mmn {owner}`" if owner else f"{len(entries)} entries"
            raise ConfigError(
                f"--out {path}: holds files `mmn {command}` did not make ({made}); choose an "
                "empty folder, or pass --force to write into it anyway"
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        marker.write_text(command + "\n")
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot be written: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"--out {path}: cannot be written")
    return path


def output_owner(path: Path) -> str | None:
    """The command whose marker `path` carries, or None (no marker, or not readable)."""
    try:
        return (path / MARKER).read_text().strip() or None
    except OSError:
        return None
