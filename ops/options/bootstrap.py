"""The `--bootstrap HOST:PORT` option shared by commands: a given broker, or the embedded one."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from streaming.broker import EmbeddedBroker


def add_bootstrap_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=None,
        help="Kafka bootstrap address; without it an embedded broker is started for this command",
    )


@contextlib.contextmanager
def bootstrap_or_embedded(bootstrap: str | None) -> Iterator[str]:
    """Yield the given bootstrap address, or start an embedded broker and yield its address."""
    if bootstrap:
        yield bootstrap
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap
