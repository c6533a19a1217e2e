"""Errors of the ops layer, and the set the CLI reports as one line.

`model` and `streaming` import nothing of the rest of the project, so each layer has its
own root; this module gathers them:

    ModelError (model.errors)         bad model config, snapshot, vocabulary
    StreamingError (streaming.errors) SchemaError, BrokerError
    SimulatorError (simulator.errors) SourceError (bad file line), ReplayError
    OpsError                          ConfigError, RegistryError, SnapshotError, EvaluationError
"""

from __future__ import annotations

from model.errors import ModelError
from simulator.errors import SimulatorError
from streaming.errors import StreamingError


class OpsError(Exception):
    """Root of the ops layer's errors."""


class ConfigError(OpsError, ValueError):
    """A command-line option or setting is invalid; the message names the key."""


class EvaluationError(OpsError):
    """The A/B evaluator or a report cannot go on (no serving snapshot, a model that cannot score)."""


PROJECT_ERRORS: tuple[type[Exception], ...] = (OpsError, ModelError, SimulatorError, StreamingError)
