"""What the trainer says about itself: Prometheus metrics on 127.0.0.1, beside its progress line.

The progress line (`streaming.progress.ProgressLine`, emitted by the trainer) is a log
record (logger `ops.training.trainer`) every few seconds of wall time: examples/s over the
last interval, the last batch loss, the event-time watermark, the lag behind the stream in
messages and the last published snapshot. The lag is read from the
consumer's high watermarks, which the embedded broker can under-report: it is
shown for the operator, never used to decide anything.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ops.errors import ConfigError

log = logging.getLogger("ops.training.trainer")


class TrainerMetrics:
    """Prometheus metrics of one run, served on 127.0.0.1:port when a port is given."""

    def __init__(self, run: str, port: int | None = None) -> None:
        self.registry = CollectorRegistry()
        labels = {"run": run}
        self.examples = _counter(
            self.registry, "mmn_trainer_examples_total", "Examples trained", labels
        )
        self.batches = _counter(
            self.registry, "mmn_trainer_batches_total", "Optimizer steps", labels
        )
        self.duplicates = _counter(
            self.registry,
            "mmn_trainer_duplicates_dropped_total",
            "Re-emitted examples dropped",
            labels,
        )
        self.snapshots = _counter(
            self.registry, "mmn_trainer_snapshots_total", "Snapshots published", labels
        )
        self.loss = _gauge(self.registry, "mmn_trainer_loss", "Loss of the last mini-batch", labels)
        self.watermark = _gauge(
            self.registry,
            "mmn_trainer_watermark_seconds",
            "Event-time watermark trained up to",
            labels,
        )
        self.lag = _gauge(
            self.registry,
            "mmn_trainer_lag_messages",
            "Mini-batches behind the stream (approximate)",
            labels,
        )
        self.broker_up = _gauge(
            self.registry, "mmn_trainer_broker_up", "1 while the broker answers", labels
        )
        self.broker_up.set(1)
        self.rate = _gauge(
            self.registry, "mmn_trainer_examples_per_second", "Training throughput", labels
        )
        self.validation_loss = Gauge(
            "mmn_trainer_validation_log_loss",
            "Progressive validation: mean log loss before each step (labels known at training time)",
            ["run", "domain"],
            registry=self.registry,
        )
        self.validation_auc = Gauge(
            "mmn_trainer_validation_auc",
            "Progressive validation: exact AUC of the last window of rows before each step",
            ["run", "domain"],
            registry=self.registry,
        )
        self.drifts = _gauge(
            self.registry, "mmn_trainer_drift_points", "Log-loss drifts ADWIN detected", labels
        )
        self.run = run
        self.server = None
        if port is not None:
            self.server = serve_metrics(self.registry, port)

    def show_validation(self, metrics: dict) -> None:
        """Set the progressive-validation gauges from ProgressiveValidation.metrics()."""
        for domain, figures in metrics["domains"].items():
            self.validation_loss.labels(run=self.run, domain=domain).set(figures["log_loss"])
            auc = figures["auc"]
            self.validation_auc.labels(run=self.run, domain=domain).set(
                float("nan") if auc is None else auc
            )
        self.drifts.set(len(metrics["drift_points"]))

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve_metrics(registry: CollectorRegistry, port: int) -> Any:
    """Serve registry's metrics on 127.0.0.1:port (0: a free port); the server, to shut down.

    A port that cannot be bound is a ConfigError naming `--metrics-port`.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(f"--metrics-port must be a TCP port 0..65535, got {port}")
    try:
        server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
        ) from None
    log.info("metrics served url=http://127.0.0.1:%d/metrics", server.server_port)
    return server


def _counter(registry: CollectorRegistry, name: str, doc: str, labels: dict[str, str]):
    return Counter(name, doc, list(labels), registry=registry).labels(**labels)


def _gauge(registry: CollectorRegistry, name: str, doc: str, labels: dict[str, str]):
    return Gauge(name, doc, list(labels), registry=registry).labels(**labels)
