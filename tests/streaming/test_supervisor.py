"""The supervisor runs real `mmn` children: a failure carries its log, stop() ends them by PID."""

from __future__ import annotations

import pytest

from ops.cli.demo.supervisor import ComponentFailed, Supervisor
from streaming.broker import free_port, wait_for_port


def test_a_failing_child_fails_the_wait_with_its_log_tail(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        # A trainer without a broker exits 2 at once with a one-line error.
        supervisor.start("train", ["train", "--run", "r"])
        with pytest.raises(
            ComponentFailed, match=r"train exited with code 2; its log: .*train\.log"
        ):
            supervisor.wait(["train"], timeout_s=60)
        failed = supervisor.children["train"]
    assert failed.tail().splitlines()[0] == "$ mmn train --run r"
    assert "mmn train needs --bootstrap" in failed.tail()


@pytest.mark.broker
def test_a_daemon_runs_until_stopped_and_stop_ends_it_by_pid(tmp_path):
    port = free_port()
    with Supervisor(tmp_path, grace_s=10) as supervisor:
        broker = supervisor.start("broker", ["broker", "--port", str(port)], daemon=True)
        assert wait_for_port("127.0.0.1", port, 30)
        supervisor.check()  # running: no failure
    assert broker.process.returncode == 0  # stopped by SIGTERM, which it handles
    assert "broker listening; bootstrap 127.0.0.1:" in broker.tail()


def test_a_daemon_that_exits_is_a_failure_even_with_code_0(tmp_path):
    with Supervisor(tmp_path) as supervisor:
        child = supervisor.start("runs", ["runs", "list", "--help"], daemon=True)
        child.process.wait()
        assert child.process.returncode == 0
        with pytest.raises(ComponentFailed, match="runs exited with code 0"):
            supervisor.check()


@pytest.mark.broker
def test_a_reaped_child_keeps_its_cpu_seconds_and_stop_child_reaps_a_daemon(tmp_path):
    port = free_port()
    with Supervisor(tmp_path, grace_s=10) as supervisor:
        helped = supervisor.start("help", ["runs", "list", "--help"])
        broker = supervisor.start("broker", ["broker", "--port", str(port)], daemon=True)
        supervisor.wait(["help"], timeout_s=60)
        assert helped.cpu_s is not None and helped.cpu_s > 0  # an interpreter's start-up
        assert wait_for_port("127.0.0.1", port, 30)
        assert broker.cpu_s is None  # running
        assert supervisor.stop_child("broker") is broker
        assert broker.process.returncode == 0 and broker.cpu_s is not None and broker.cpu_s > 0
