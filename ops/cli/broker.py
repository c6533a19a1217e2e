"""`mmn broker`: run the embedded broker in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from ops.options.configs import port_number
from streaming.broker import BrokerConfig, EmbeddedBroker


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broker", help="run the embedded Kafka-protocol broker (Tansu) in the foreground"
    )
    parser.add_argument(
        "--port", type=port_number, default=9092, help="port on 127.0.0.1 (0: a free one)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmbeddedBroker(BrokerConfig(port=args.port)) as broker:
        print(
            f"broker listening; bootstrap {broker.bootstrap} (in memory: a restart loses all topics)",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0
