"""`mmn evaluate` never waits in silence: unknown runs refused at start, a missing serving
snapshot named (which arm, since when) while waited for, then refused after --snapshot-timeout."""

from __future__ import annotations

import time

import pytest
from ab_stream import evaluate

from ops.cli import main
from ops.cli.evaluate import wait_for_runs
from ops.errors import ConfigError, EvaluationError, RegistryError
from ops.evaluation.experiment import EvaluatorConfig
from ops.evaluation.monitoring import EvaluatorMonitor
from ops.store.database import open_registry
from ops.store.experiments import get_experiment
from ops.streams.signals import StopRequest


def _config(**overrides) -> EvaluatorConfig:
    arms = (("control", "run-a"), ("treatment", "no-such-run"))
    return EvaluatorConfig(experiment="e", arms=arms, **overrides)


def test_an_arm_naming_a_missing_run_is_refused_at_once(registry_with_snapshots) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        wait_for_runs(registry_with_snapshots, _config(), StopRequest())
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert "treatment=no-such-run" in message and "known runs: run-a, run-b" in message
    assert "control=run-a" not in message


def test_wait_for_runs_waits_then_refuses_naming_the_wait(registry_with_snapshots) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"after waiting 1s \(--wait-for-runs\)"):
        wait_for_runs(registry_with_snapshots, _config(wait_for_runs_s=1.0), StopRequest())
    assert time.monotonic() - started >= 1.0


def test_mmn_evaluate_with_a_mistyped_run_exits_2_naming_it(tmp_path, capsys) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    code = main(["evaluate", "--experiment", "e", "--arm", "control=no-such-run",
                 "--bootstrap", "127.0.0.1:1", "--db", db])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "--arm control=no-such-run" in err[-1] and "none yet" in err[-1]
    # Refused before the experiment was registered.
    with open_registry(db)() as session, pytest.raises(RegistryError, match="unknown experiment"):
        get_experiment(session, "e")


def test_a_missing_serving_snapshot_names_the_arm_then_times_out(tmp_path, caplog) -> None:
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    with caplog.at_level("INFO"), pytest.raises(EvaluationError) as timed_out:
        evaluate(Session, snapshot_timeout_s=0.3)
    assert "serving snapshot of arm control (run run-a), treatment (run run-b) since" in str(
        timed_out.value
    )
    with Session() as session:
        experiment = get_experiment(session, "exp")
        assert experiment.status == "failed" and "arm control" in (experiment.status_detail or "")


def test_the_snapshot_timeout_has_a_finite_default() -> None:
    assert EvaluatorConfig(experiment="e", arms=(("control", "r"),)).snapshot_timeout_s < 1e9


def test_the_progress_line_names_the_waiting_arm(caplog) -> None:
    monitor = EvaluatorMonitor("e")
    with caplog.at_level("INFO", logger="ops.evaluation.evaluator"):
        monitor.show(scored={"control": 0}, open_clicks=0, sealed=1, watermark=None,
                     waiting="waiting for a serving snapshot of arm treatment (run b) since T")  # fmt: skip
    assert "waiting=yes (waiting for a serving snapshot of arm treatment" in caplog.text
