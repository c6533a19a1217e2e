"""What the trainer says about itself: a progress line, and Prometheus metrics on 127.0.0.1.

The progress line is a log record (logger `ops.training.trainer`) every few seconds of wall time:
examples/s over the last interval, the last batch loss, the event-time watermark, the lag
behind the stream in messages and the last published snapshot. The lag is read from the
consumer's high watermarks, which the embedded broker can under-report (DESIGN.md): it is
shown for the operator, never used to decide anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger("ops.training.trainer")


def format_event_time(ts: int | None) -> str:
    """An event time (seconds) as ISO 8601 UTC, "-" when unknown.

    >>> format_event_time(86400)
    '1970-01-02T00:00:00Z'
    """
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
            self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
            log.info("metrics served url=http://127.0.0.1:%d/metrics", self.server.server_port)

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


def _counter(registry: CollectorRegistry, name: str, doc: str, labels: dict[str, str]):
    return Counter(name, doc, list(labels), registry=registry).labels(**labels)


def _gauge(registry: CollectorRegistry, name: str, doc: str, labels: dict[str, str]):
    return Gauge(name, doc, list(labels), registry=registry).labels(**labels)


class Progress:
    """Emits the progress line at most every `every_s` seconds and keeps the rate gauge."""

    def __init__(self, run: str, metrics: TrainerMetrics, every_s: float = 5.0) -> None:
        self.run, self.metrics, self.every_s = run, metrics, every_s
        self._last_time = time.monotonic()
        self._last_examples = 0

    def update(
        self,
        *,
        examples: int,
        loss: float,
        watermark: int | None,
        lag: int | None,
        last_snapshot: int | None,
        quality: Callable[[], dict] | None = None,
        force: bool = False,
    ) -> None:
        now = time.monotonic()
        elapsed = now - self._last_time
        if not force and elapsed < self.every_s:
            return
        rate = (examples - self._last_examples) / elapsed if elapsed > 0 else 0.0
        self._last_time, self._last_examples = now, examples
        self.metrics.rate.set(rate)
        log.info(
            "progress run=%s examples=%d examples_per_s=%.0f loss=%.4f watermark=%s lag=%s last_snapshot=%s%s",
            self.run,
            examples,
            rate,
            loss,
            format_event_time(watermark),
            "-" if lag is None else lag,
            "-" if last_snapshot is None else f"v{last_snapshot}",
            _quality(quality() if quality is not None else None),
        )


def _quality(metrics: dict | None) -> str:
    """The progressive-validation part of the progress line (overall figures, drifts)."""
    if not metrics or "overall" not in metrics["domains"]:
        return ""
    overall = metrics["domains"]["overall"]
    auc = "-" if overall["auc"] is None else f"{overall['auc']:.4f}"
    return (
        f" pv_logloss={overall['log_loss']:.4f} pv_auc={auc} drifts={len(metrics['drift_points'])}"
    )
