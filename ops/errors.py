"""Errors of the ops layer, and the set the CLI reports as one line.

`model` and `streaming` import nothing of the rest of the project, so each layer has its
own root; this module gathers them:

    ModelError (model.errors)         bad model config, snapshot, vocabulary
    StreamingError (streaming.errors) SchemaError, BrokerError
    SimulatorError (simulator.errors) SourceError (bad file line), ReplayError
    OpsError                          every error class of ops, all defined here:
    ├── ConfigError                   an invalid option or setting
    ├── OptionError                   an option's value breaks its config's rule
    ├── UsageError                    a command line that does not parse (ops.options)
    ├── RegistryError                 the registry database (ops.store.database)
    │   └── LeaseError                a run another trainer holds, or a lease lost
    ├── SnapshotStoreError            a run's snapshot files (ops.store.snapshots)
    │   └── SnapshotCorruptError      a file that does not verify or decode
    ├── TrainerIOError                the trainer's Kafka input and announcements
    ├── EvaluationError               the A/B evaluator or a report cannot go on
    └── DemoError                     a demo step saw output it did not expect

A snapshot file that cannot be restored as a model is model.errors.SnapshotError.
"""

from __future__ import annotations

from typing import Any

from model.errors import ModelError
from simulator.errors import SimulatorError
from streaming.errors import StreamingError


class OpsError(Exception):
    """Root of the ops layer's errors."""


class ConfigError(OpsError, ValueError):
    """A command-line option or setting is invalid; the message names the key."""


class OptionError(OpsError):
    """An option's value breaks a rule of its component's config; the message names the
    flag. Not a ValueError: tyro would take it for a value it failed to parse."""


class UsageError(OpsError):
    """A command line that does not parse; carries tyro's event to the one line it makes."""


class RegistryError(OpsError):
    """The registry database cannot be opened, migrated or queried, or a run is unknown."""


class LeaseError(RegistryError):
    """Another live trainer holds the run's lease, or this trainer's lease was taken over."""


class SnapshotStoreError(OpsError):
    """A run's snapshot cannot be written, read or registered, or the run is locked."""


class SnapshotCorruptError(SnapshotStoreError):
    """A snapshot file does not match the checksum the registry recorded, or cannot be decoded."""


class TrainerIOError(OpsError):
    """The trainer cannot read its topic or announce a snapshot."""


class EvaluationError(OpsError):
    """The A/B evaluator or a report cannot go on (no serving snapshot, a model that cannot score)."""


class DemoError(OpsError):
    """A demo step found the pipeline's output different from what it expected."""


class ComponentFailed(DemoError):
    """A supervised child of the demo exited with an error (or a daemon child exited at all).

    child: the supervisor's record of it (name, log_path, tail()); code: its exit status.
    """

    def __init__(self, child: Any, code: int) -> None:
        super().__init__(f"{child.name} exited with code {code}; its log: {child.log_path}")
        self.child = child
        self.code = code


PROJECT_ERRORS: tuple[type[Exception], ...] = (OpsError, ModelError, SimulatorError, StreamingError)
