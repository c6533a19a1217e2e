"""Joiner workers as child processes: create their topics, start, watch for the end, stop.

What `mmn join`, its benchmark and the end-to-end tests share. Workers are stopped by
the PIDs started here: SIGTERM, then SIGKILL after a grace period (a Faust worker with a
crashed agent may ignore SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from kafka import KafkaConsumer, TopicPartition

from streaming.errors import BrokerError
from streaming.joiner_app import JoinerConfig
from streaming.minibatch import decode_minibatch
from streaming.processes import stop_processes
from streaming.topics import create_topics


def create_joiner_topics(config: JoinerConfig) -> None:
    """Sources, outputs and the table changelog, all with the sources' partition count."""
    names = config.topics
    every = (*names.sources, names.examples, names.minibatches, names.deadletter)
    partitions = {name: config.partitions for name in every}
    partitions[config.changelog_topic] = config.partitions
    # Faust's assignor topic; declared here because Faust's own declaration is off.
    partitions[f"{config.app_id}-__assignor-__leader"] = 1
    create_topics(config.bootstrap, partitions)


class EndWatcher:
    """Reads `minibatches` from the beginning, noting which partitions delivered their end batch.

    Also counts the rows out so far and the highest mini-batch watermark, for progress lines.
    """

    def __init__(self, config: JoinerConfig) -> None:
        self.config = config
        self.ended: set[int] = set()
        self.rows = 0
        self.watermark: int | None = None
        self.consumer = KafkaConsumer(
            bootstrap_servers=config.bootstrap, enable_auto_commit=False, client_id="mmn-join-watch"
        )
        tps = [TopicPartition(config.topics.minibatches, p) for p in range(config.partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)

    @property
    def done(self) -> bool:
        return len(self.ended) == self.config.partitions

    def poll(self, timeout_ms: int = 200) -> None:
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                batch = decode_minibatch(record.value)
                self.rows += len(batch)
                if self.watermark is None or batch.watermark > self.watermark:
                    self.watermark = batch.watermark
                if batch.end:
                    self.ended.add(batch.partition)

    def close(self) -> None:
        self.consumer.close()


class JoinerWorkers:
    """N joiner worker processes of one config; a context manager that stops them."""

    def __init__(self, config: JoinerConfig, *, log_dir: Path, stop_grace_s: float = 10.0) -> None:
        self.config = config
        self.log_dir = log_dir
        self.stop_grace_s = stop_grace_s
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> JoinerWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            index = len(self.processes)
            with open(self.log_dir / f"joiner-{index}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "streaming.joiner_app", self.config.to_json()],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        return self

    def check_alive(self) -> None:
        """Raise BrokerError naming the log of a worker that exited on its own."""
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is not None and code not in (-signal.SIGKILL, -signal.SIGTERM):
                log = (self.log_dir / f"joiner-{index}.log").read_text(errors="replace")
                raise BrokerError(f"joiner worker {index} exited with {code}: {log[-800:]}")

    def kill(self, index: int) -> None:
        """SIGKILL one worker (a crash), by its PID."""
        process = self.processes[index]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def wait_for_end(
        self, timeout_s: float, progress: Callable[[EndWatcher], None] | None = None
    ) -> EndWatcher:
        """Block until every partition's end mini-batch is out; raise on timeout or a dead worker.

        `progress`, when given, is called with the watcher after every poll.
        """
        watcher = EndWatcher(self.config)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                self.check_alive()
                watcher.poll()
                if progress is not None:
                    progress(watcher)
                if watcher.done:
                    return watcher
        finally:
            watcher.close()
        raise BrokerError(
            f"the joiner did not finish within {timeout_s:.0f}s: end batches from partitions "
            f"{sorted(watcher.ended)} of {self.config.partitions}; see {self.log_dir}"
        )

    def stop(self) -> None:
        """SIGTERM every worker, then SIGKILL those still running after the grace period."""
        stop_processes(self.processes, self.stop_grace_s)

    def __enter__(self) -> JoinerWorkers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
