"""What the evaluator daemon says about itself: a progress line, and Prometheus metrics on 127.0.0.1."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from streaming.events import format_event_time
from streaming.progress import ProgressLine

log = logging.getLogger("ops.evaluation.evaluator")


class EvaluatorMonitor:
    """The progress line of one experiment's evaluator and its gauges (served when a port is given)."""

    def __init__(self, experiment: str, port: int | None = None) -> None:
        self.experiment = experiment
        self.registry = CollectorRegistry()
        labels = ["experiment"]
        self.scored = Gauge("mmn_evaluator_scored", "Clicks scored per arm", [*labels, "arm"],
                            registry=self.registry)  # fmt: skip
        self.open = Gauge("mmn_evaluator_open_clicks", "Clicks whose label is not final yet",
                          labels, registry=self.registry)  # fmt: skip
        self.sealed = Gauge("mmn_evaluator_sealed_batches", "Final clicks waiting for snapshots",
                            labels, registry=self.registry)  # fmt: skip
        self.watermark = Gauge("mmn_evaluator_watermark_seconds", "Event time read up to",
                               labels, registry=self.registry)  # fmt: skip
        self.line = ProgressLine(
            lambda text: log.info("progress experiment=%s %s", experiment, text),
            unit="scored",
            every_s=0.0,  # the evaluator decides when (progress_every_s)
        )
        self.server = None
        if port is not None:
            self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
            log.info("metrics served url=http://127.0.0.1:%d/metrics", self.server.server_port)

    def show(
        self,
        *,
        scored: dict[str, int],
        open_clicks: int,
        sealed: int,
        watermark: int | None,
        waiting: str | None,
    ) -> None:
        """Update the gauges and log the progress line (waiting: which arm has no serving
        snapshot, since when; None while none is missing)."""
        for arm, n in scored.items():
            self.scored.labels(experiment=self.experiment, arm=arm).set(n)
        self.open.labels(experiment=self.experiment).set(open_clicks)
        self.sealed.labels(experiment=self.experiment).set(sealed)
        if watermark is not None:
            self.watermark.labels(experiment=self.experiment).set(watermark)
        self.line.emit(
            sum(scored.values()),
            arms=",".join(f"{arm}:{n}" for arm, n in scored.items()),
            open=open_clicks,
            sealed=sealed,
            watermark=format_event_time(watermark),
            waiting="no" if waiting is None else f"yes ({waiting})",
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
