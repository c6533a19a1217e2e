"""Typed events on the `impressions`, `clicks` and `conversions` topics.

One JSON object per message, keyed by the impression id so that an impression, its click
and its conversion land in the same partition. Every event carries the schema version `v`,
its kind `event`, `impression_id`, `user_id` and `ts` (event time, seconds of the log).
Markers (`Heartbeat`, `EndOfStream`) carry only `v`, `event` and `ts`; the replay sends
them, unkeyed, to every partition of every source topic.

>>> imp = Impression(impression_id="42", user_id="u7", ts=1000, conv_type="a",
...                  scenario="s", features={"device_type": "d1"})
>>> decode_event(encode_event(imp)) == imp
True
>>> decode_event(b'{"v": 1, "event": "click", "impression_id": "42", "user_id": "u7"}')
Traceback (most recent call last):
...
streaming.errors.SchemaError: click event: field 'ts' is missing
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from streaming.errors import SchemaError

SCHEMA_VERSION = 1
# The latest event time a timestamp may hold: 9999-12-31T23:59:59Z, the end of what dates
# (and every consumer's datetime) can show. Larger values are milliseconds or garbage.
MAX_EVENT_TS = 253_402_300_799

OTHER_DOMAIN = "other"
"""The conv_type / scenario of an impression whose value is not among a source's top-K: the
readers write it, and the learner's domain vocabularies reserve their slot 0 for it, so that
N_t = top_types + 1 (one constant for both; `model` cannot import it, ops passes it in)."""


def format_event_time(ts: int | None) -> str:
    """An event time (seconds) as ISO 8601 UTC, the one way the project shows one; "-" if unknown.

    Whatever a registry or a topic holds must show: a value no date can show (a timestamp
    in milliseconds) is printed as it is.

    >>> format_event_time(86400), format_event_time(1597000000000)
    ('1970-01-02T00:00:00Z', '1597000000000')
    """
    if ts is None:
        return "-"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError, TypeError):
        return str(ts)


@dataclass(frozen=True, kw_only=True)
class Impression:
    """An ad shown to a user: its domain (conversion type, display scenario) and features."""

    kind: ClassVar[str] = "impression"
    impression_id: str
    user_id: str
    ts: int
    conv_type: str
    scenario: str
    features: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Click:
    """A click on an impression."""

    kind: ClassVar[str] = "click"
    impression_id: str
    user_id: str
    ts: int


@dataclass(frozen=True, kw_only=True)
class Conversion:
    """A conversion attributed to the click on an impression; `amount` is an outcome, never a feature."""

    kind: ClassVar[str] = "conversion"
    impression_id: str
    user_id: str
    ts: int
    amount: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Heartbeat:
    """A watermark heartbeat: the replay's event clock has reached `ts` on this partition.

    The replay sends one to every partition of every source topic (so idle partitions
    advance too); it has no key and no impression.
    """

    kind: ClassVar[str] = "heartbeat"
    ts: int


@dataclass(frozen=True, kw_only=True)
class EndOfStream:
    """The replay is over at event time `ts`: every pending decision can be taken."""

    kind: ClassVar[str] = "end"
    ts: int


Event = Impression | Click | Conversion
Marker = Heartbeat | EndOfStream
EVENT_TYPES: dict[str, type] = {
    cls.kind: cls for cls in (Impression, Click, Conversion, Heartbeat, EndOfStream)
}


def encode_event(event: Event | Marker) -> bytes:
    """The message value of an event: compact JSON with the schema version and kind."""
    payload: dict[str, Any] = {"v": SCHEMA_VERSION, "event": event.kind}
    payload.update(event.__dict__)
    return json.dumps(payload, separators=(",", ":")).encode()


def _field(payload: dict[str, Any], kind: str, name: str, types: type | tuple[type, ...]) -> Any:
    if name not in payload:
        raise SchemaError(f"{kind} event: field {name!r} is missing")
    value = payload[name]
    # bool is an int in Python, but never a valid timestamp or amount.
    if isinstance(value, bool) or not isinstance(value, types):
        raise SchemaError(
            f"{kind} event: field {name!r} has {type(value).__name__} value {_short(value)}, "
            f"expected {types.__name__ if isinstance(types, type) else ' or '.join(t.__name__ for t in types)}"
        )
    if isinstance(value, str):
        _check_text(kind, name, value)
    return value


def _short(value: Any) -> str:
    """repr() cut to 80 characters; an int too long to print (Python's digit limit) by its size."""
    try:
        text = repr(value)
    except ValueError:
        return f"an int of {value.bit_length()} bits"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _check_text(kind: str, name: str, value: str) -> None:
    # JSON may carry lone surrogates ("\ud800"): such a string cannot be written back as UTF-8.
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise SchemaError(f"{kind} event: field {name!r} is not valid unicode: {exc}") from None


def decode_event(value: bytes | None) -> Event | Marker:
    """Decode a message value into its event; a malformed payload raises SchemaError naming the field.

    A tombstone (a message without a value) and bytes that are not UTF-8 JSON are malformed.
    """
    if value is None:
        raise SchemaError("a tombstone: the message has no value")
    try:
        # UTF-8 only: json.loads would also take UTF-16/32, which the joiner cannot store back.
        payload = json.loads(value.decode())
    except (ValueError, RecursionError) as exc:  # ValueError: also an over-long number
        raise SchemaError(f"event payload is not JSON (UTF-8): {_short(exc)}") from exc
    if not isinstance(payload, dict):
        raise SchemaError(f"event payload is a JSON {type(payload).__name__}, expected an object")
    version = payload.get("v")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"field 'v' is {_short(version)}; this reader understands schema version {SCHEMA_VERSION}"
        )
    kind = payload.get("event")
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        raise SchemaError(f"field 'event' is {_short(kind)}, expected one of {sorted(EVENT_TYPES)}")
    cls = EVENT_TYPES[kind]
    if cls in (Heartbeat, EndOfStream):
        return cls(ts=_field(payload, kind, "ts", int))
    common = {
        "impression_id": _field(payload, kind, "impression_id", str),
        "user_id": _field(payload, kind, "user_id", str),
        "ts": _field(payload, kind, "ts", int),
    }
    if cls is Impression:
        features = _field(payload, kind, "features", dict)
        for name, val in features.items():
            if not isinstance(val, str):
                raise SchemaError(
                    f"impression event: feature {_short(name)} has non-string value {_short(val)}"
                )
            _check_text(kind, "features", name)
            _check_text(kind, "features", val)
        return Impression(
            **common,
            conv_type=_field(payload, kind, "conv_type", str),
            scenario=_field(payload, kind, "scenario", str),
            features=features,
        )
    if cls is Conversion:
        amount = _field(payload, kind, "amount", (int, float))
        try:
            return Conversion(**common, amount=float(amount))
        except OverflowError:
            raise SchemaError(
                f"conversion event: amount {_short(amount)} is out of range"
            ) from None
    return Click(**common)
