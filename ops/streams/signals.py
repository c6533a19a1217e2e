"""The stop flag of a daemon (trainer, evaluator): set by SIGTERM or SIGINT, naming the signal.

>>> stop = StopRequest()
>>> stop.request("signal SIGTERM")
>>> stop.is_set(), stop.reason
(True, 'signal SIGTERM')
"""

from __future__ import annotations

import signal
import threading


class StopRequest(threading.Event):
    """A stop flag that remembers why it was set (the experiment's status shows it)."""

    reason = "stop requested"

    def request(self, reason: str) -> None:
        self.reason = reason
        self.set()


def stop_on_signals() -> StopRequest:
    """A stop flag that SIGTERM and SIGINT set (main thread only), naming the signal.

    Installed before the daemon starts, so a signal during start-up is not lost: the daemon
    then stops at once.
    """
    stop = StopRequest()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda n, _: stop.request(f"signal {signal.Signals(n).name}"))
    return stop
