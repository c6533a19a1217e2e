"""The `--bootstrap HOST:PORT` option shared by commands: a given broker, or the embedded one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import tyro

from streaming.broker import EmbeddedBroker

# A command's field `bootstrap: Bootstrap = None`.
Bootstrap = Annotated[
    str | None,
    tyro.conf.arg(
        metavar="HOST:PORT",
        help="Kafka bootstrap address; without it an embedded broker is started for this command",
    ),
]


@contextlib.contextmanager
def bootstrap_or_embedded(bootstrap: str | None) -> Iterator[str]:
    """Yield the given bootstrap address, or start an embedded broker and yield its address."""
    if bootstrap:
        yield bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
