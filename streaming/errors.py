"""Errors raised by the streaming layer.

StreamingError
├── SchemaError        a payload that does not decode into its record
├── BrokerError        the broker cannot be started, reached or used
└── JoinerError        joiner workers keep dying, or the joiner does not finish in time
"""

from __future__ import annotations


class StreamingError(Exception):
    """Root of the streaming layer's errors."""


class SchemaError(StreamingError, ValueError):
    """A message payload is malformed; the message names the offending field."""


class BrokerError(StreamingError):
    """The Kafka-protocol broker could not be started, reached or used."""


class JoinerError(StreamingError):
    """The joiner cannot go on: its workers died more often than allowed, or it timed out."""
