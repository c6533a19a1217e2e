"""docker-compose.yml and the Dockerfile, checked without a Docker engine (none runs here).

Every project service runs a valid `mmn` command (parsed by the real parser, with the
service's environment), sets only `MMN_*` variables that its command's settings read,
and every published port is on 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ops.cli import parse_command
from ops.options.typed import env_name, flags

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROJECT = sorted(name for name, service in SERVICES.items() if "build" in service)


def test_the_pipeline_has_its_services():
    assert {"kafka", "postgres", "replay", "join", "train-mmn", "train-esmm", "evaluate"} <= set(
        SERVICES
    )
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka", "postgres"):
        assert "healthcheck" in SERVICES[name] and SERVICES[name]["volumes"], name


@pytest.mark.parametrize("name", PROJECT)
def test_every_service_runs_a_valid_mmn_command(name):
    service = SERVICES[name]
    command = service["command"]
    assert command[0] == "mmn", command
    environment = {key: str(value) for key, value in service.get("environment", {}).items()}
    path, _, _ = parse_command(command[1:], environment)  # exits (SystemExit) on a bad command
    assert path[0] == command[1]


@pytest.mark.parametrize("name", PROJECT)
def test_every_variable_a_service_sets_is_read_by_its_command(name):
    service = SERVICES[name]
    command = service["command"][1:]
    path, entry, options = parse_command(command, {})
    by_variable = {env_name(flag): flag for flag in flags(entry.options)}
    environment = {key: str(value) for key, value in service.get("environment", {}).items()}
    for key in environment:
        assert key in by_variable, f"{name}: no option of `mmn {command[0]}` reads {key}"
    _, _, from_environment = parse_command(command, environment)
    given = [token for key, value in environment.items() for token in (by_variable[key], value)]
    _, _, from_flags = parse_command([*path, *given, *command[len(path) :]], {})
    assert from_environment == from_flags, name


def test_every_published_port_is_on_localhost_only():
    published = [(n, p) for n, s in SERVICES.items() for p in s.get("ports", [])]
    assert published
    for name, port in published:
        assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", str(port)), (name, port)


def test_the_project_image_installs_cpu_torch_first_then_the_project():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    installs = [line for line in lines if line.startswith("RUN pip install")]
    assert "torch==2.13.0" in installs[0].split()
    assert "--index-url https://download.pytorch.org/whl/cpu" in installs[0]
    assert installs[1].split()[:5] == ["RUN", "pip", "install", "--no-cache-dir", "."]
    for line in lines:
        if line.startswith("COPY"):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is missing"
    for name in PROJECT:
        assert SERVICES[name]["build"] == "."
