"""The live view shows what the components' own progress lines say, as they write them."""

from __future__ import annotations

import contextlib
import io
import logging
import subprocess
import sys
from types import SimpleNamespace

from ops.cli.demo.live_view import (
    LiveView,
    Row,
    evaluator_line,
    join_line,
    replay_line,
    trainer_line,
)
from ops.cli.demo.supervisor import Child, Supervisor
from ops.cli.join_telemetry import JoinTelemetry
from ops.evaluation.monitoring import EvaluatorMonitor
from streaming.events import format_event_time
from streaming.joiner_app import JoinerConfig
from streaming.progress import LogProgress, ProgressLine

T0 = 1_596_412_800  # 2020-08-03 00:00 UTC


def _child(supervisor: Supervisor, name: str, *, running: bool) -> Child:
    argv = [sys.executable, "-c", "import time; time.sleep(60)" if running else "pass"]
    process = subprocess.Popen(argv)
    if not running:
        process.wait()
    child = Child(
        name=name,
        argv=tuple(argv),
        log_path=supervisor.log_dir / f"{name}.log",
        process=process,
        daemon=False,
    )
    supervisor.children[name] = child
    return child


def _trainer_log(path, run: str) -> None:
    # As the trainer logs it (ops.training.trainer.Trainer.run): a record of its logger.
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("ops.training.trainer")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        line = ProgressLine(lambda text: log.info("progress run=%s %s", run, text),
                            unit="examples", every_s=0.0)  # fmt: skip
        line.emit(12_345, loss="0.3100", watermark=format_event_time(T0), last_snapshot="v3",
                  pv_logloss="0.3321", pv_auc="0.6512", drifts=0)  # fmt: skip
    finally:
        log.removeHandler(handler)
        handler.close()


def _join_progress() -> None:
    """One progress line as `mmn join` prints it, from the figures its monitor read."""
    monitor = SimpleNamespace(
        rows=5_000, ended={0, 1}, watermarks={0: T0, 1: T0 + 86_400}, deadletters={},
        events_in=12_000,
    )  # fmt: skip
    workers = SimpleNamespace(
        config=JoinerConfig(bootstrap="127.0.0.1:1", partitions=4), processes=[], restarts=0
    )
    watch = SimpleNamespace(up=True, unreachable_s=0.0)
    JoinTelemetry(None, every_s=0.0).update(monitor, workers, watch, force=True)


def test_each_row_shows_the_figures_of_its_components_last_progress_line(tmp_path):
    supervisor = Supervisor(tmp_path)
    replay = _child(supervisor, "replay", running=False)
    with open(replay.log_path, "w") as log:
        progress = LogProgress(log, unit="events", every_s=0.0)
        progress.update(50_000, T0)
        progress.update(126_962, T0 + 3600)
        progress.close()
    join = _child(supervisor, "join", running=True)
    with open(join.log_path, "w") as log, contextlib.redirect_stdout(log):
        _join_progress()
    _trainer_log(_child(supervisor, "train-mmn", running=False).log_path, "demo-mmn")
    with open(_child(supervisor, "evaluate", running=False).log_path, "w") as log:
        monitor = EvaluatorMonitor("demo")  # the evaluator's own progress line, logged to a file
        handler = logging.StreamHandler(log)
        logging.getLogger("ops.evaluation.evaluator").addHandler(handler)
        logging.getLogger("ops.evaluation.evaluator").setLevel(logging.INFO)
        try:
            monitor.show(scored={"mmn": 1200, "esmm": 1200}, open_clicks=5, sealed=0,
                         watermark=T0, waiting=None)  # fmt: skip
        finally:
            logging.getLogger("ops.evaluation.evaluator").removeHandler(handler)
            monitor.close()
    rows = [
        Row("replay", "replay", replay_line),
        Row("join", "joiner", join_line),
        Row("train-mmn", "train mmn", trainer_line),
        Row("train-esmm", "train esmm", trainer_line),
        Row("evaluate", "evaluator", evaluator_line),
    ]
    try:
        lines = LiveView(supervisor, rows, stream=io.StringIO()).lines()
    finally:
        join.process.kill()
        join.process.wait()
    replay_row, join_row, mmn_row, esmm_row, evaluator_row = lines[1:]
    assert replay_row.split()[:4] == ["replay", "done", "126,962", "events"]
    assert "clock 2020-08-03 01:00" in replay_row
    assert join_row.split()[:4] == ["joiner", "running", "5,000", "examples"]
    assert "watermark 2020-08-04 00:00" in join_row
    assert mmn_row.split()[:5] == ["train", "mmn", "done", "12,345", "trained"]
    assert "watermark 2020-08-03 00:00" in mmn_row and mmn_row.endswith("running AUC 0.6512")
    assert "scored mmn 1,200, esmm 1,200   watermark 2020-08-03 00:00" in evaluator_row
    assert esmm_row.split() == ["train", "esmm", "waiting"]


def test_off_a_terminal_the_view_is_printed_every_interval(tmp_path):
    supervisor = Supervisor(tmp_path)
    _child(supervisor, "replay", running=False)
    out = io.StringIO()
    view = LiveView(supervisor, [Row("replay", "replay", replay_line)], stream=out, every_s=3600)
    view.tick()
    view.tick()  # within the interval: nothing new
    view.tick(force=True)
    assert out.getvalue().count("-- live") == 2
    assert "\x1b" not in out.getvalue()
