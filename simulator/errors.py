"""Errors of the simulator.

SimulatorError
├── SourceError   a log file that cannot be read; names the file and line number
└── ReplayError   the replay cannot publish (e.g. the broker went away)
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of the simulator's errors."""


class SourceError(SimulatorError, ValueError):
    """A bad log file or line; the message names the file and the line number."""


class ReplayError(SimulatorError):
    """Publishing the replay failed."""
