"""`mmn broker`: run the embedded broker in the foreground."""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass

from ops.options.typed import Entry
from ops.options.values import Port
from streaming.broker import BrokerConfig, EmbeddedBroker


@dataclass(frozen=True)
class BrokerCommand:
    """Run the embedded Kafka-protocol broker (Tansu) in the foreground."""

    port: Port = 9092
    """port on 127.0.0.1 (0: a free one)"""


def run(command: BrokerCommand) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(BrokerConfig(port=command.port)) as broker:
        print(
            f"broker listening; bootstrap {broker.bootstrap} (in memory: a restart loses all topics)",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


ENTRIES = {
    ("broker",): Entry(
        "run the embedded Kafka-protocol broker (Tansu) in the foreground", BrokerCommand, run
    )
}
