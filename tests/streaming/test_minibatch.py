"""Round trips and rejections of the mini-batch encoding."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.columns import CodedStrings
from streaming.errors import SchemaError
from streaming.example import KINDS, Example
from streaming.minibatch import (
    FORMAT_VERSION,
    MAGIC,
    MiniBatch,
    decode_minibatch,
    encode_minibatch,
)

text = st.text(max_size=12)
examples = st.builds(
    Example,
    impression_id=text,
    user_id=text,
    ts=st.integers(-(2**62), 2**62),
    label_ts=st.integers(-(2**62), 2**62),
    click=st.integers(0, 1),
    conversion=st.integers(0, 1),
    kind=st.sampled_from(KINDS),
    conv_type=text,
    scenario=text,
    features=st.dictionaries(st.sampled_from(["a", "b", "ü"]), text, max_size=3),
)


@given(rows=st.lists(examples, max_size=20), seq=st.integers(0, 10**6), end=st.booleans())
def test_round_trip_keeps_every_row_in_order(rows: list[Example], seq: int, end: bool) -> None:
    batch = MiniBatch.from_examples(rows, partition=2, seq=seq, watermark=77, end=end)
    decoded = decode_minibatch(encode_minibatch(batch))
    fields = sorted({name for ex in rows for name in ex.features})
    # A field a row lacks comes back as "".
    filled = [
        Example(**{**ex.__dict__, "features": {f: ex.features.get(f, "") for f in fields}})
        for ex in rows
    ]
    assert decoded.examples() == filled
    assert (decoded.partition, decoded.seq, decoded.watermark, decoded.end) == (2, seq, 77, end)
    assert decoded.dedupe_key == (2, seq)


def test_dictionary_encoding_stores_a_repeated_string_once() -> None:
    def size(brand: str) -> int:
        rows = [
            Example(
                impression_id=str(i),
                user_id="u",
                ts=i,
                label_ts=i,
                click=1,
                conversion=0,
                kind="negative",
                conv_type="t",
                scenario="s",
                features={"brand": brand},
            )
            for i in range(1000)
        ]
        batch = MiniBatch.from_examples(rows, partition=0, seq=0, watermark=0, end=False)
        return len(encode_minibatch(batch))

    assert size("x" * 33) - size("x") == 32


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"xx", "too short"),
        (struct.pack("<4sHI", b"NOPE", FORMAT_VERSION, 2) + b"{}", "magic"),
        (struct.pack("<4sHI", MAGIC, FORMAT_VERSION + 1, 2) + b"{}", "version"),
        (struct.pack("<4sHI", MAGIC, FORMAT_VERSION, 2) + b"{}", "malformed"),
    ],
)
def test_foreign_payloads_are_rejected(value: bytes, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        decode_minibatch(value)


def test_feature_columns_decode_as_their_distinct_values_and_codes() -> None:
    rows = [
        Example(impression_id=str(i), user_id="u", ts=i, label_ts=i, click=1, conversion=0,
                kind="negative", conv_type="t", scenario="s", features={"f": "xy"[i % 2]})
        for i in range(5)
    ]  # fmt: skip
    batch = MiniBatch.from_examples(rows, partition=0, seq=0, watermark=0, end=False)
    column = decode_minibatch(encode_minibatch(batch)).features["f"]
    assert isinstance(column, CodedStrings)
    assert column.distinct == ["x", "y"] and column.codes.tolist() == [0, 1, 0, 1, 0]


def test_a_code_past_the_column_values_is_rejected_at_decoding() -> None:
    rows = [
        Example(impression_id="1", user_id="u", ts=1, label_ts=1, click=1, conversion=0,
                kind="negative", conv_type="t", scenario="s", features={"f": "x"})
    ]  # fmt: skip
    value = bytearray(encode_minibatch(MiniBatch.from_examples(rows, partition=0, seq=0,
                                                               watermark=0, end=False)))  # fmt: skip
    # The last column is f:f, its last 4 bytes the one row's code: point it past "x".
    value[-4:] = struct.pack("<I", 7)
    with pytest.raises(SchemaError, match="code 7 is past its 1 values"):
        decode_minibatch(bytes(value))
