"""Is the broker answering? A Kafka-protocol probe and a watch that times outages.

A TCP connect is not enough: a stopped (SIGSTOP) or overloaded broker still accepts
connections in the kernel's backlog and never answers. The probe sends one ApiVersions
request (the first request of every Kafka client) and waits for its reply.

`BrokerWatch` probes every few seconds on a thread of its own, so a daemon's main loop
reads the state without blocking: `unreachable_s` (how long the broker has not answered,
0 when it does) and `expired` (longer than the allowed outage).
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable

from streaming.errors import BrokerError

_API_VERSIONS = 18


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when the broker at HOST:PORT replies to an ApiVersions request within timeout_s."""
    host, _, port = bootstrap.rpartition(":")
    client = b"mmn-probe"
    request = struct.pack(">hhih", _API_VERSIONS, 0, 1, len(client)) + client
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = _read(sock, 8)
            size, correlation = struct.unpack(">ii", header)
            return correlation == 1 and size >= 4
    except (OSError, ValueError, struct.error):
        return False


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


class BrokerWatch:
    """Probes a broker every `every_s` seconds in the background and times its outages.

    timeout_s: how long an outage may last before `expired` (the daemon's `--broker-timeout`).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        timeout_s: float,
        every_s: float = 2.0,
        probe_s: float = 3.0,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        """on_change: called (on the watch's thread) with a line each time the state flips."""
        if not timeout_s > 0:
            raise BrokerError(f"--broker-timeout is {timeout_s}s; it must be > 0")
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.every_s = every_s
        self.probe_s = probe_s
        self.on_change = on_change
        self._down_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="broker-watch", daemon=True)

    def start(self) -> BrokerWatch:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            if broker_answers(self.bootstrap, self.probe_s):
                if self._down_since is not None:
                    self._tell(
                        f"broker at {self.bootstrap} answers again after {self.unreachable_s:.0f}s"
                    )
                self._down_since = None
            elif self._down_since is None:
                # Down since the probe began: an unanswered probe took probe_s of the outage.
                self._down_since = started
                self._tell(
                    f"broker unreachable at {self.bootstrap}; retrying, giving up after "
                    f"{self.timeout_s:.0f}s (--broker-timeout)"
                )
            self._stop.wait(max(0.0, self.every_s - (time.monotonic() - started)))

    def _tell(self, line: str) -> None:
        if self.on_change is not None:
            self.on_change(line)

    @property
    def unreachable_s(self) -> float:
        """Seconds the broker has not answered; 0.0 while it answers."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    @property
    def up(self) -> bool:
        return self._down_since is None

    @property
    def expired(self) -> bool:
        """True once the current outage is longer than timeout_s."""
        return self.unreachable_s > self.timeout_s

    def status(self) -> str:
        """`ok`, or `broker unreachable for Ns` for a progress line."""
        return "ok" if self.up else f"broker unreachable for {self.unreachable_s:.0f}s"

    def raise_if_expired(self, who: str) -> None:
        """BrokerError naming the outage once it is longer than timeout_s."""
        if self.expired:
            raise BrokerError(
                f"{who}: the broker at {self.bootstrap} has not answered for "
                f"{self.unreachable_s:.0f}s (--broker-timeout {self.timeout_s:.0f}s); giving up"
            )

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.probe_s + 1)


class RepeatFilter(logging.Filter):
    """Lets one record per message template through every `every_s` seconds.

    With the broker gone, aiokafka logs the same connection error many times a second;
    the log keeps the first, then one per interval with the count it stands for, each on
    one line (an exception's repr instead of its traceback).
    """

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        last, dropped = self._seen.get(key, (-math.inf, 0))
        if now - last < self.every_s:
            self._seen[key] = (last, dropped + 1)
            return False
        self._seen[key] = (now, 0)
        if record.exc_info and record.exc_info[1] is not None:
            # One line: a reset connection is the outage itself, not a bug worth a traceback.
            record.msg = f"{record.msg}: {record.exc_info[1]!r}"
            record.exc_info, record.exc_text = None, None
        if dropped:
            record.msg = f"{record.msg} (and {dropped} more like it in {now - last:.0f}s)"
        return True


def quiet_repeats(prefixes: tuple[str, ...], every_s: float = 30.0) -> None:
    """Rate-limit repeated records of the loggers under `prefixes` (Kafka clients in an outage).

    Logger filters are not inherited by child loggers: the one shared filter goes on every
    logger that exists under those names (the client libraries create theirs at import).
    """
    repeats = RepeatFilter(every_s)
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in prefixes:
            logging.getLogger(name).addFilter(repeats)
