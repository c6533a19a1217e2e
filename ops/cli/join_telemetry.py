"""`mmn join`'s progress line and Prometheus metrics, from what the joiner published."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Gauge

from ops.training.telemetry import serve_metrics
from streaming.events import format_event_time
from streaming.health import BrokerWatch
from streaming.join_monitor import JoinMonitor
from streaming.joiner_process import JoinerWorkers
from streaming.progress import ProgressLine


class JoinTelemetry:
    """`mmn join`'s progress line and its Prometheus metrics on 127.0.0.1 (with --metrics-port)."""

    def __init__(self, port: int | None, every_s: float) -> None:
        """port: None serves no metrics; every_s: wall seconds between progress lines."""
        # `progress rows=... watermark=...`: the line the demo's live view reads.
        self.line = ProgressLine(
            lambda text: print(f"progress {text}", flush=True), unit="rows", every_s=every_s
        )
        self.registry = CollectorRegistry()
        gauge = partial(Gauge, registry=self.registry)
        self.events_in = gauge("mmn_joiner_events_in", "Source messages committed by the joiner")
        self.examples = gauge("mmn_joiner_examples", "Examples out in mini-batches (deduped)")
        self.deadletters = gauge(
            "mmn_joiner_deadletters", "Dead letters by reason (deduped)", ["reason"]
        )
        self.watermark = gauge(
            "mmn_joiner_watermark_seconds",
            "Event time of the partition's last batch",
            ["partition"],
        )
        self.alive = gauge("mmn_joiner_workers_alive", "Worker processes running")
        self.restarts = gauge("mmn_joiner_worker_restarts", "Worker restarts so far")
        self.broker_up = gauge("mmn_joiner_broker_up", "1 while the broker answers")
        self.unreachable = gauge(
            "mmn_joiner_broker_unreachable_seconds", "How long the broker has not answered"
        )
        self.server = None if port is None else serve_metrics(self.registry, port)

    def update(
        self, monitor: JoinMonitor, workers: JoinerWorkers, watch: BrokerWatch, force: bool = False
    ) -> None:
        """Refresh the metrics; print the progress line when it is due (or forced)."""
        alive = sum(p.poll() is None for p in workers.processes)
        self.events_in.set(monitor.events_in or 0)
        self.examples.set(monitor.rows)
        for reason, n in monitor.deadletters.items():
            self.deadletters.labels(reason=reason).set(n)
        for partition, ts in monitor.watermarks.items():
            self.watermark.labels(partition=str(partition)).set(ts)
        self.alive.set(alive)
        self.restarts.set(workers.restarts)
        self.broker_up.set(int(watch.up))
        self.unreachable.set(watch.unreachable_s)
        if not self.line.due(force):
            return
        partitions = range(workers.config.partitions)
        marks = {
            f"watermark_p{p}": format_event_time(monitor.watermarks.get(p)) for p in partitions
        }
        newest = max(monitor.watermarks.values(), default=None)
        self.line.emit(
            monitor.rows,
            ended=f"{len(monitor.ended)}/{workers.config.partitions}",
            watermark=format_event_time(newest),
            **marks,
            events_in=monitor.events_in,
            deadletters=",".join(f"{r}:{n}" for r, n in sorted(monitor.deadletters.items())) or 0,
            workers=f"{alive}/{len(workers.processes)}",
            restarts=workers.restarts,
            broker="ok" if watch.up else f"unreachable-{watch.unreachable_s:.0f}s",
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
