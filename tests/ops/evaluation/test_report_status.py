"""The experiment's status as its evaluator records it, as the report shows it, and `report delete`.

In process: end of stream -> finished, a stop request -> stopped (naming it), an error ->
failed (with its message). Then `mmn evaluate` as a subprocess against the embedded
broker: after `--until-end` the report says finished; a running one refuses `report
delete`; after SIGTERM the report says stopped, naming the signal, and `report delete`
removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from ab_stream import config, encoded_stream, evaluate
from kafka import KafkaProducer
from learner_rows import ListSource

from ops.evaluation.evaluator import Evaluator
from ops.evaluation.report import load_report
from ops.evaluation.report_text import format_report
from ops.store.experiments import get_experiment
from ops.streams.signals import StopRequest
from streaming.minibatch import decode_minibatch
from streaming.topics import create_topics


def _status(Session, name: str) -> tuple[str, str | None]:
    with Session() as session:
        experiment = get_experiment(session, name)
        return experiment.status, experiment.status_detail


def test_end_of_stream_is_finished(registry_with_snapshots) -> None:
    evaluate(registry_with_snapshots)
    assert _status(registry_with_snapshots, "exp") == ("finished", "end of stream")
    text = format_report(load_report(registry_with_snapshots, "exp"))
    assert text.startswith("experiment exp: finished ")


def test_a_stop_request_is_stopped_with_its_reason(registry_with_snapshots) -> None:
    stop = StopRequest()
    stop.request("signal SIGTERM")
    source = ListSource({0: encoded_stream()}, chunk=3)
    evaluator = Evaluator(config(), Session=registry_with_snapshots, source=source,
                          decode=decode_minibatch, stop=stop)  # fmt: skip
    assert evaluator.run().reason == "signal"
    assert _status(registry_with_snapshots, "exp") == ("stopped", "signal SIGTERM")
    assert "stopped" in format_report(load_report(registry_with_snapshots, "exp")).splitlines()[0]


def test_an_error_is_failed_with_its_message(registry_with_snapshots) -> None:
    def broken(_: bytes):
        raise RuntimeError("the decoder broke")

    source = ListSource({0: encoded_stream()}, chunk=3)
    evaluator = Evaluator(config(), Session=registry_with_snapshots, source=source, decode=broken)
    with pytest.raises(RuntimeError):
        evaluator.run()
    assert _status(registry_with_snapshots, "exp") == (
        "failed",
        "RuntimeError: the decoder broke",
    )
    first = format_report(load_report(registry_with_snapshots, "exp")).splitlines()[0]
    assert "failed" in first and "the decoder broke" in first


def _mmn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.broker
def test_evaluator_process_records_finished_and_stopped(registry_with_snapshots, broker) -> None:
    url = str(registry_with_snapshots.kw["bind"].url)
    topic = "minibatches-status"
    create_topics(broker.bootstrap, {topic: 1})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for value in encoded_stream():
        producer.send(topic, key=b"0", value=value, partition=0)
    producer.flush()
    producer.close()
    common = ["evaluate", "--arm", "control=run-a", "--arm", "treatment=run-b", "--shadow",
              "--bootstrap", broker.bootstrap, "--topic", topic, "--db", url,
              "--flush-rows", "10", "--snapshot-timeout", "60"]  # fmt: skip

    done = _mmn(*common, "--experiment", "exp-end", "--until-end")
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_report(registry_with_snapshots, "exp-end")["status"]["state"] == "finished"

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    live = subprocess.Popen([sys.executable, "-m", "ops.cli", *common, "--experiment", "exp-term"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _status(registry_with_snapshots, "exp-term")[0] == "running":
                    break
            except Exception:  # not registered yet
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the evaluator never recorded running")
        refused = _mmn("report", "delete", "exp-term", "--db", url)
        assert refused.returncode == 2 and "is running" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        live.send_signal(signal.SIGTERM)
        assert live.wait(60) == 0
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    report = load_report(registry_with_snapshots, "exp-term")
    assert report["status"]["state"] == "stopped"
    assert report["status"]["detail"] == "signal SIGTERM"
    shown = _mmn("report", "show", "exp-term", "--db", url)
    assert shown.returncode == 0, shown.stderr
    assert "stopped" in shown.stdout.splitlines()[0] and "SIGTERM" in shown.stdout.splitlines()[0]
    removed = _mmn("report", "delete", "exp-term", "--db", url)
    assert removed.returncode == 0, removed.stderr
    gone = _mmn("report", "show", "exp-term", "--db", url)
    assert gone.returncode == 2 and "unknown experiment 'exp-term'" in gone.stderr
