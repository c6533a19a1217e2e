"""Arm assignment by salted hash: stable across processes and arm order, shares as split."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ops.errors import ConfigError
from ops.evaluation.assignment import Split

USERS = [f"u{i}" for i in range(2_000)]
SCRIPT = (
    "import json, sys; from ops.evaluation.assignment import Split; "
    "s = Split({'treatment': 1, 'control': 3}, salt='exp'); "
    "print(json.dumps([s.arm(f'u{i}') for i in range(2000)]))"
)


def test_assignment_is_the_same_in_another_process_and_arm_order() -> None:
    here = Split({"control": 3, "treatment": 1}, salt="exp")
    arms = [here.arm(u) for u in USERS]
    # Another process with another string-hash seed, arms listed the other way round.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == arms
    assert 0.72 < arms.count("control") / len(arms) < 0.78


def test_salt_reshuffles_users() -> None:
    a = Split({"control": 1, "treatment": 1}, salt="exp-a")
    b = Split({"control": 1, "treatment": 1}, salt="exp-b")
    same = sum(a.arm(u) == b.arm(u) for u in USERS) / len(USERS)
    assert 0.45 < same < 0.55


def test_bad_weights_are_refused() -> None:
    with pytest.raises(ConfigError, match="split"):
        Split({"control": 1, "treatment": 0}, salt="x")
