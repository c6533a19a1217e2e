"""A joiner worker whose agent raises once, at the impression `boom`: what tests make crash.

Run as `python tests/support/raising_worker.py CONFIG_JSON` in place of `streaming.joiner_app`.
The first worker to meet `boom` leaves a flag file in its working folder (the log
folder) and raises; a restarted worker finds the flag and joins `boom` like any event.
"""

from __future__ import annotations

import sys
from pathlib import Path

from streaming import joiner_app
from streaming.partition_joiner import PartitionJoiner
from streaming.segments import Step

FLAG = Path("raised-once")
_process = PartitionJoiner.process


def process(self: PartitionJoiner, source: int, offset: int, value: bytes | None) -> Step:
    if value is not None and b'"impression_id":"boom"' in value and not FLAG.exists():
        FLAG.write_text("")
        raise RuntimeError("injected fault at impression boom")
    return _process(self, source, offset, value)


if __name__ == "__main__":
    PartitionJoiner.process = process  # type: ignore[method-assign]
    joiner_app.main(sys.argv[1:])
