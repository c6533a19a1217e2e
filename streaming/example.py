"""Records the joiner emits: labeled examples (`examples` topic) and dead letters (`deadletter`).

An example is one label decision about one impression, taken in event time. Its JSON
carries the schema version `v`; consumers drop the copies an at-least-once restart may
produce by the pair (`impression_id`, `kind`), which is unique per decision.

>>> ex = Example(impression_id="42", user_id="u7", ts=1000, label_ts=4600, click=1,
...              conversion=0, kind="negative", conv_type="a", scenario="s",
...              features={"device_type": "d1"})
>>> decode_example(encode_example(ex)) == ex
True
>>> ex.dedupe_key
('42', 'negative')
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from streaming.errors import SchemaError

EXAMPLE_VERSION = 1
DEADLETTER_VERSION = 1
# The most bytes of an input a dead letter keeps (its `value`), and of its detail text.
DEADLETTER_VALUE_BYTES = 1024
DEADLETTER_DETAIL_CHARS = 500

# Kinds in their tie-break order: decisions taken at the same event time are emitted in
# this order, so that the output order is a function of the events alone.
KINDS = ("positive", "negative", "delayed-positive", "final", "non-click", "delayed-final")


@dataclass(frozen=True, kw_only=True)
class Example:
    """A labeled impression: `ts` is the impression time, `label_ts` the decision time.

    kind: `positive` / `negative` / `delayed-positive` (policy fake-negative), `final`
    (policy wait; and with `final_copy`, a click's final label at the attribution window's
    end), `non-click` (an impression that was not clicked within the click window),
    `delayed-final` (with `final_copy`: the final label, 1, of a click whose conversion came
    after the observation window, at the attribution window's end).
    """

    impression_id: str
    user_id: str
    ts: int
    label_ts: int
    click: int
    conversion: int
    kind: str
    conv_type: str
    scenario: str
    features: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> tuple[str, str]:
        """What identifies this decision: copies after a restart share it."""
        return (self.impression_id, self.kind)


def encode_example(example: Example) -> bytes:
    """The message value of an example: compact JSON with the schema version."""
    # vars(), not asdict(): asdict deep-copies the features of every example.
    return json.dumps({"v": EXAMPLE_VERSION, **vars(example)}, separators=(",", ":")).encode()


def decode_example(value: bytes) -> Example:
    """Decode an `examples` message; a wrong version or missing field raises SchemaError."""
    try:
        payload = json.loads(value)
        if payload.pop("v") != EXAMPLE_VERSION:
            raise SchemaError(f"example version is not {EXAMPLE_VERSION}: {value[:80]!r}")
        example = Example(**payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SchemaError(f"malformed example payload {value[:80]!r}: {exc}") from exc
    if example.kind not in KINDS:
        raise SchemaError(f"example kind is {example.kind!r}, expected one of {KINDS}")
    return example


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """An input the joiner could not use: why, where it came from, its size and first bytes.

    reason: `malformed` (a tombstone included), `too-large`, `implausible-time`,
    `late-event`, `duplicate-impression`, `duplicate-click`, `duplicate-conversion`,
    `orphan-click`, `orphan-conversion`. (topic, partition, offset) identifies the input,
    so consumers drop restart copies by it. value: the input's first bytes, at most
    `DEADLETTER_VALUE_BYTES` (so that every dead letter can be sent, whatever the input);
    size: the input's whole size in bytes.
    """

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    value: bytes
    size: int

    @property
    def dedupe_key(self) -> tuple[str, int, int]:
        return (self.topic, self.partition, self.offset)


def encode_deadletter(letter: DeadLetter) -> bytes:
    """JSON with the original bytes in base64 (`value_b64`)."""
    payload: dict[str, Any] = {"v": DEADLETTER_VERSION, **asdict(letter)}
    payload["value_b64"] = base64.b64encode(payload.pop("value")).decode()
    return json.dumps(payload, separators=(",", ":")).encode()


def decode_deadletter(value: bytes) -> DeadLetter:
    """Decode a `deadletter` message back into its record.

    >>> letter = DeadLetter(reason="malformed", detail="not JSON", topic="clicks",
    ...                     partition=0, offset=7, value=b"\\xff", size=1)
    >>> decode_deadletter(encode_deadletter(letter)) == letter
    True
    """
    try:
        payload = json.loads(value)
        if payload.pop("v") != DEADLETTER_VERSION:
            raise SchemaError(f"dead letter version is not {DEADLETTER_VERSION}")
        payload["value"] = base64.b64decode(payload.pop("value_b64"))
        payload.setdefault("size", len(payload["value"]))  # written before sizes were kept
        return DeadLetter(**payload)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SchemaError(f"malformed dead letter payload {value[:80]!r}: {exc}") from exc
