from __future__ import annotations

import json

import pytest

from streaming.errors import SchemaError
from streaming.events import (
    Click,
    Conversion,
    EndOfStream,
    Heartbeat,
    Impression,
    decode_event,
    encode_event,
)


@pytest.mark.parametrize(
    "event",
    [
        Impression(
            impression_id="1", user_id="u", ts=5, conv_type="t", scenario="s", features={"a": "b"}
        ),
        Click(impression_id="1", user_id="u", ts=6),
        Conversion(impression_id="1", user_id="u", ts=7, amount=12.5),
    ],
)
def test_round_trip(event):
    assert decode_event(encode_event(event)) == event


def _payload(**changes):
    base = {
        "v": 1,
        "event": "conversion",
        "impression_id": "1",
        "user_id": "u",
        "ts": 3,
        "amount": 1.0,
    }
    base.update(changes)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (_payload(v=2), "'v'"),
        (_payload(event="purchase"), "'event'"),
        (_payload(ts=...), "'ts' is missing"),
        (_payload(ts="3"), "'ts' has str"),
        (_payload(ts=True), "'ts' has bool"),
        (_payload(impression_id=7), "'impression_id' has int"),
        (_payload(amount=None), "'amount'"),
    ],
)
def test_malformed_payload_names_the_field(payload, names):
    with pytest.raises(SchemaError, match=names.replace("(", r"\(")):
        decode_event(payload)


def test_impression_feature_values_must_be_strings():
    bad = json.dumps(
        {
            "v": 1,
            "event": "impression",
            "impression_id": "1",
            "user_id": "u",
            "ts": 1,
            "conv_type": "t",
            "scenario": "s",
            "features": {"price": 3},
        }
    ).encode()
    with pytest.raises(SchemaError, match="feature 'price'"):
        decode_event(bad)


@pytest.mark.parametrize("marker", [Heartbeat(ts=100), EndOfStream(ts=200)])
def test_markers_round_trip(marker):
    assert decode_event(encode_event(marker)) == marker
