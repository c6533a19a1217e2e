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

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import tyro

from ops.errors import ConfigError
from ops.options.values import unwritable

if TYPE_CHECKING:  # the registry's modules load where it is opened: `--help` stays light
    from sqlalchemy.orm import Session, sessionmaker

MARKER = ".mmn-output"

# A command's field `db: RegistryUrl = DEFAULT_URL`.
RegistryUrl = Annotated[str, tyro.conf.arg(metavar="URL", help="registry database URL")]


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


def open_daemon_registry(url: str, command: str) -> sessionmaker[Session]:
    """Open the registry `mmn command` writes, creating it if new, and log which, and how.

    The line is the command's first: a mistyped --db then shows at once as "created". A
    SQLite file whose folder is missing is created with its folders (the default
    `runs/registry.db` must work on a first run), and the line names the new folder.
    """
    from ops.store.database import open_registry, registry_exists, sqlite_file

    existed = registry_exists(url)
    database = sqlite_file(url)
    new_folder = None
    if database is not None and not database.parent.exists():
        new_folder = database.parent.absolute()
        while not new_folder.parent.exists():
            new_folder = new_folder.parent  # the topmost folder that will be created
    Session = open_registry(url)
    how = "existing" if existed else "created now"
    if new_folder is not None:
        how += f", with the new folder {new_folder}"
    logging.getLogger(f"ops.cli.{command}").info("registry %s (%s)", _shown(url), how)
    return Session


def _shown(url: str) -> str:
    """url without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def check_output_folder(path: Path, option: str) -> None:
    """A folder a command will create and write into: refused (ConfigError naming the option)
    when it is a file, or when the nearest existing folder on its way is a file or read-only.

    >>> check_output_folder(Path("/proc/self/snapshots"), "--snapshot-dir")
    Traceback (most recent call last):
    ...
    ops.errors.ConfigError: --snapshot-dir /proc/self/snapshots: cannot write into /proc/self
    """
    if (why := unwritable(path)) is not None:
        raise ConfigError(f"{option} {path}: {why}")
