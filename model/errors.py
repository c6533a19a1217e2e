"""Errors of the model layer.

ModelError
├── ModelConfigError   an unknown model name or an invalid hyper-parameter
└── SnapshotError      a model snapshot that cannot be read or does not verify
"""

from __future__ import annotations


class ModelError(Exception):
    """Root of the model layer's errors."""


class ModelConfigError(ModelError, ValueError):
    """An unknown model name or an invalid hyper-parameter; the message names it."""


class SnapshotError(ModelError):
    """A model snapshot cannot be read, or its content does not match what it claims."""
