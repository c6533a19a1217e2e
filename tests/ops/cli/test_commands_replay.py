"""`mmn replay` from the command line: topics, window of days, summary; a dead broker fails."""

from __future__ import annotations

import pytest

from ops.cli import main
from simulator.synth import generate, write
from streaming.broker import free_port


@pytest.mark.broker
def test_replay_command_publishes_a_window_into_named_topics(broker, tmp_path, capsys):
    write(generate(1000, seed=3), tmp_path)
    argv = [
        "replay", "--data", str(tmp_path), "--source", "synthetic", "--bootstrap", broker.bootstrap,
        "--days", "10", "--partitions", "2", "--impressions-topic", "imp", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    impressions = int(out.split("imp: ")[1].split(" events")[0].replace(",", ""))
    # Ten of the log's ninety days.
    assert 60 < impressions < 180
    assert "clicks:" in out and "sale rate" in out and "event time" in out


def test_replay_command_to_a_dead_broker_exits_with_one_line(tmp_path, capsys):
    write(generate(200, seed=3), tmp_path)
    code = main(
        ["replay", "--data", str(tmp_path), "--bootstrap", f"127.0.0.1:{free_port()}", "--quiet"]
    )
    assert code == 2
    assert "cannot reach the broker" in capsys.readouterr().err


@pytest.mark.broker
def test_an_empty_replay_and_mismatched_partitions_exit_2_with_one_line(broker, tmp_path, capsys):
    write(generate(300, seed=3), tmp_path)
    base = ["replay", "--data", str(tmp_path), "--bootstrap", broker.bootstrap, "--quiet"]
    assert main([*base, "--start-day", "1000", "--partitions", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "replayed 0 events" in err and "--start-day 1000" in err
    with pytest.raises(SystemExit) as stop:
        main([*base, "--partitions", "0"])
    assert stop.value.code == 2
    assert "--partitions: must be an integer >= 1" in capsys.readouterr().err
    assert main([*base, "--partitions", "3"]) == 2  # the topics exist with 2
    assert "'impressions' has 2, expected 3" in capsys.readouterr().err
    assert main([*base, "--partitions", "2"]) == 0
    capsys.readouterr()
    # The joiner expecting 4 partitions of topics replayed into 2 is told at start.
    join = ["join", "--bootstrap", broker.bootstrap, "--partitions", "4", "--until-end"]
    assert main([*join, "--timeout", "60", "--log-dir", str(tmp_path / "logs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'impressions' has 2, expected 4" in err


@pytest.mark.broker
def test_a_log_the_embedded_broker_cannot_hold_is_refused_in_one_line(
    broker, tmp_path, capsys, monkeypatch
):
    write(generate(500, seed=3), tmp_path)
    base = ["replay", "--data", str(tmp_path), "--bootstrap", broker.bootstrap, "--quiet"]
    monkeypatch.setattr("ops.cli.replay.available_bytes", lambda: 1 << 20)  # 1 MiB free
    assert main([*base, "--impressions-topic", "refused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmn replay: error: ")
    assert "at least 1,000 events" in err and "embedded broker" in err and "Kafka" in err
    assert "refused" not in broker_topics(broker.bootstrap)  # refused before anything was sent
    # A replay of a window is not estimated; with the memory there, the whole log goes.
    assert main([*base, "--days", "5", "--impressions-topic", "window"]) == 0
    monkeypatch.undo()
    assert main([*base, "--impressions-topic", "whole"]) == 0


def broker_topics(bootstrap: str) -> set[str]:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()
