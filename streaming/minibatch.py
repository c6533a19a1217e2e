"""Mixed-domain mini-batches on the `minibatches` topic: a compact, versioned columnar encoding.

One message = one mini-batch of examples from one source partition, in decision order.
Message key: the source partition number (ASCII). Consumers drop restart copies by
(`partition`, `seq`); copies are byte-identical.

Layout (all integers little-endian):

    offset 0   4 bytes   magic b"MMNB"
    offset 4   u16       format version (FORMAT_VERSION = 1)
    offset 6   u32       H, length of the header
    offset 10  H bytes   header: UTF-8 JSON object
    offset 10+H          body: the columns, back to back

Header keys: `partition`, `seq` (mini-batch number on that partition, from 0), `watermark`
(event time the batch reaches: every decision of the partition with label_ts < watermark
is in this batch or an earlier one), `end` (the partition's stream is over; the end batch
may have 0 rows), `rows`, `kinds` (names of the kind codes), `fields` (feature field
names, sorted), `columns`: a list of {name, type, offset, length} with offsets relative
to the body, and, from the joiner, `observation_window_s` and `attribution_window_s`: the
label windows O and A it decided with (the A/B evaluator reads them to know when a
negative is final; absent in a batch made by anything else).

Column types: `i64` (rows x int64), `u8` (rows x uint8), `str` (dictionary-encoded
strings: u32 K distinct values, u32 offsets[K + 1] into the UTF-8 blob that follows
them, the blob, then rows x u32 codes).

Columns: impression_id, user_id, conv_type, scenario (str); ts (impression time),
label_ts (decision time) (i64); click, conversion, kind (u8; kind indexes `kinds`); one
`str` column per feature field, named `f:<field>`, raw strings (the trainer hashes them;
a row without the field holds ""). The domain of a row is (conv_type, scenario).

>>> from streaming.example import Example
>>> ex = Example(impression_id="42", user_id="u7", ts=1000, label_ts=4600, click=1,
...              conversion=0, kind="negative", conv_type="a", scenario="s",
...              features={"device_type": "d1"})
>>> batch = MiniBatch.from_examples([ex], partition=0, seq=3, watermark=4600, end=False)
>>> decoded = decode_minibatch(encode_minibatch(batch))
>>> decoded.examples() == [ex], len(decoded), decoded.kinds, decoded.label_ts.tolist()
(True, 1, ['negative'], [4600])
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streaming.columns import CodedStrings
from streaming.errors import SchemaError
from streaming.example import KINDS, Example

MAGIC = b"MMNB"
_STR_COLUMNS = ("impression_id", "user_id", "conv_type", "scenario")
_NUMBER_COLUMNS = ("ts", "label_ts", "click", "conversion", "kind")
FORMAT_VERSION = 1
_PREAMBLE = struct.Struct("<4sHI")


@dataclass(frozen=True, kw_only=True, eq=False)
class MiniBatch:
    """The columns of one mini-batch; numeric columns are numpy arrays, strings are lists."""

    partition: int
    seq: int
    watermark: int
    end: bool
    impression_ids: list[str]
    user_ids: list[str]
    ts: np.ndarray  # (B,) int64, impression time
    label_ts: np.ndarray  # (B,) int64, decision time
    click: np.ndarray  # (B,) uint8
    conversion: np.ndarray  # (B,) uint8
    kinds: list[str]
    conv_types: list[str]
    scenarios: list[str]
    # Decoded: each a CodedStrings (distinct values and codes, as on the wire).
    features: dict[str, Sequence[str]] = field(default_factory=dict)
    label_windows: tuple[int, int] | None = None  # the joiner's (O, A) in seconds

    def __len__(self) -> int:
        return len(self.impression_ids)

    @property
    def dedupe_key(self) -> tuple[int, int]:
        return (self.partition, self.seq)

    @classmethod
    def from_examples(
        cls,
        examples: Sequence[Example],
        *,
        partition: int,
        seq: int,
        watermark: int,
        end: bool,
        label_windows: tuple[int, int] | None = None,
    ) -> MiniBatch:
        """Columns of `examples`, in their order (label_windows: the joiner's (O, A))."""
        fields = sorted({name for ex in examples for name in ex.features})
        return cls(
            partition=partition,
            seq=seq,
            watermark=watermark,
            end=end,
            impression_ids=[ex.impression_id for ex in examples],
            user_ids=[ex.user_id for ex in examples],
            ts=np.array([ex.ts for ex in examples], dtype=np.int64),
            label_ts=np.array([ex.label_ts for ex in examples], dtype=np.int64),
            click=np.array([ex.click for ex in examples], dtype=np.uint8),
            conversion=np.array([ex.conversion for ex in examples], dtype=np.uint8),
            kinds=[ex.kind for ex in examples],
            conv_types=[ex.conv_type for ex in examples],
            scenarios=[ex.scenario for ex in examples],
            features={name: [ex.features.get(name, "") for ex in examples] for name in fields},
            label_windows=label_windows,
        )

    def examples(self) -> list[Example]:
        """The rows back as examples (a field a row lacked comes back as "")."""
        return [
            Example(
                impression_id=self.impression_ids[i],
                user_id=self.user_ids[i],
                ts=int(self.ts[i]),
                label_ts=int(self.label_ts[i]),
                click=int(self.click[i]),
                conversion=int(self.conversion[i]),
                kind=self.kinds[i],
                conv_type=self.conv_types[i],
                scenario=self.scenarios[i],
                features={name: values[i] for name, values in self.features.items()},
            )
            for i in range(len(self))
        ]


def _encode_strings(values: Sequence[str]) -> bytes:
    distinct = list(dict.fromkeys(values))
    index = {value: code for code, value in enumerate(distinct)}
    encoded = [value.encode() for value in distinct]
    offsets = np.zeros(len(encoded) + 1, dtype="<u4")
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    codes = np.array([index[v] for v in values], dtype="<u4")
    return (
        struct.pack("<I", len(distinct)) + offsets.tobytes() + b"".join(encoded) + codes.tobytes()
    )


def _decode_strings(blob: memoryview, rows: int) -> CodedStrings:
    (count,) = struct.unpack_from("<I", blob, 0)
    offsets = np.frombuffer(blob, dtype="<u4", count=count + 1, offset=4).tolist()
    start = 4 + 4 * (count + 1)
    raw = bytes(blob[start : start + offsets[-1]])
    text = raw.decode()
    if len(text) == len(raw):  # ASCII, as ids and hashes are: byte offsets are str offsets
        distinct = [text[a:b] for a, b in itertools.pairwise(offsets)]
    else:
        distinct = [raw[a:b].decode() for a, b in itertools.pairwise(offsets)]
    codes = np.frombuffer(blob, dtype="<u4", count=rows, offset=start + offsets[-1])
    if rows and int(codes.max()) >= len(distinct):
        raise SchemaError(
            f"a string column's code {int(codes.max())} is past its {len(distinct)} values"
        )
    return CodedStrings(distinct, codes.astype(np.intp))


def encode_minibatch(batch: MiniBatch) -> bytes:
    """The message value of a mini-batch (see the module docstring for the layout)."""
    kind_codes = np.array([KINDS.index(k) for k in batch.kinds], dtype=np.uint8)
    columns: list[tuple[str, str, bytes]] = [
        ("impression_id", "str", _encode_strings(batch.impression_ids)),
        ("user_id", "str", _encode_strings(batch.user_ids)),
        ("conv_type", "str", _encode_strings(batch.conv_types)),
        ("scenario", "str", _encode_strings(batch.scenarios)),
        ("ts", "i64", batch.ts.astype("<i8").tobytes()),
        ("label_ts", "i64", batch.label_ts.astype("<i8").tobytes()),
        ("click", "u8", batch.click.astype(np.uint8).tobytes()),
        ("conversion", "u8", batch.conversion.astype(np.uint8).tobytes()),
        ("kind", "u8", kind_codes.tobytes()),
    ]
    columns += [(f"f:{name}", "str", _encode_strings(v)) for name, v in batch.features.items()]
    described, offset = [], 0
    for name, kind, blob in columns:
        described.append({"name": name, "type": kind, "offset": offset, "length": len(blob)})
        offset += len(blob)
    windows = {}
    if batch.label_windows is not None:
        observation, attribution = batch.label_windows
        windows = {"observation_window_s": observation, "attribution_window_s": attribution}
    header = json.dumps(
        {
            "partition": batch.partition,
            "seq": batch.seq,
            "watermark": batch.watermark,
            "end": batch.end,
            "rows": len(batch),
            "kinds": list(KINDS),
            "fields": sorted(batch.features),
            "columns": described,
            **windows,
        },
        separators=(",", ":"),
    ).encode()
    body = b"".join(blob for _, _, blob in columns)
    return _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(header)) + header + body


# The header with no feature field and every number at its widest: what a header holds
# besides its fields, at most.
_WIDEST = -(2**63)
_HEADER_BASE = len(
    json.dumps(
        {
            "partition": _WIDEST,
            "seq": _WIDEST,
            "watermark": _WIDEST,
            "end": False,
            "rows": _WIDEST,
            "kinds": list(KINDS),
            "fields": [],
            "columns": [
                {"name": name, "type": "i64", "offset": _WIDEST, "length": _WIDEST}
                for name in (*_STR_COLUMNS, *_NUMBER_COLUMNS)
            ],
            "observation_window_s": _WIDEST,
            "attribution_window_s": _WIDEST,
        },
        separators=(",", ":"),
    )
)
_ROW_NUMBER_BYTES = 8 + 8 + 1 + 1 + 1  # ts, label_ts, click, conversion, kind


class EncodedSize:
    """The size `encode_minibatch` will give the examples added so far, without encoding them.

    Exact for the body (dictionary-encoded columns included: a value already seen in its
    column costs only its code); the header is counted with every number at its widest.
    Lets the joiner cut a mini-batch before it outgrows the largest message it may send.

    >>> from streaming.example import Example
    >>> size = EncodedSize()
    >>> examples = [Example(impression_id=str(n), user_id="u", ts=1, label_ts=2, click=1,
    ...                     conversion=0, kind="negative", conv_type="a", scenario="s",
    ...                     features={"f": "x" * n}) for n in range(3)]
    >>> for ex in examples:
    ...     size.add(ex)
    >>> actual = len(encode_minibatch(MiniBatch.from_examples(
    ...     examples, partition=0, seq=0, watermark=2, end=False)))
    >>> actual <= size.bytes <= actual + 40 * (9 + 4 + 1)  # numbers counted 20 digits wide
    True
    """

    def __init__(self) -> None:
        self.rows = 0
        self.header = _HEADER_BASE
        self.body = 8 * len(_STR_COLUMNS)  # each string column: its value count, offsets[0]
        self.fixed: tuple[set[str], ...] = tuple(set() for _ in _STR_COLUMNS)
        self.fields: dict[str, set[str]] = {}  # field name -> distinct values of `f:<name>`

    @property
    def bytes(self) -> int:
        return _PREAMBLE.size + self.header + self.body

    def add(self, example: Example) -> None:
        """Count one more row."""
        features = example.features
        for name in features:
            if name not in self.fields:
                self._new_field(name)
        values = (example.impression_id, example.user_id, example.conv_type, example.scenario)
        added = 0
        for seen, value in zip(self.fixed, values, strict=True):
            if value not in seen:
                seen.add(value)
                added += 4 + len(value.encode())
        for name, seen in self.fields.items():
            value = features.get(name, "")
            if value not in seen:
                seen.add(value)
                added += 4 + len(value.encode())
        # Every string column's code of this row, and its numbers.
        self.body += added + 4 * (len(_STR_COLUMNS) + len(self.fields)) + _ROW_NUMBER_BYTES
        self.rows += 1

    def _new_field(self, name: str) -> None:
        entry = {"name": f"f:{name}", "type": "str", "offset": _WIDEST, "length": _WIDEST}
        # Its name in `fields` and its entry in `columns`, each with a comma.
        self.header += len(json.dumps(name)) + 1 + len(json.dumps(entry, separators=(",", ":"))) + 1
        self.body += 8
        self.fields[name] = set()
        if self.rows:  # the rows before hold ""
            self.fields[name].add("")
            self.body += 4 + 4 * self.rows


def minibatch_header(value: bytes) -> dict:
    """The header of a `minibatches` message (partition, seq, watermark, end, rows, ...),
    without decoding its columns; a foreign payload raises SchemaError."""
    if len(value) < _PREAMBLE.size:
        raise SchemaError(f"mini-batch payload has {len(value)} bytes, too short for its preamble")
    magic, version, header_len = _PREAMBLE.unpack_from(value)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise SchemaError(f"mini-batch magic/version is {magic!r}/{version}, expected {MAGIC!r}/1")
    try:
        header = json.loads(value[_PREAMBLE.size : _PREAMBLE.size + header_len])
    except ValueError as exc:
        raise SchemaError(f"malformed mini-batch header: {exc}") from exc
    if not isinstance(header, dict):
        raise SchemaError("malformed mini-batch header: not a JSON object")
    return header


def decode_minibatch(value: bytes) -> MiniBatch:
    """Decode a `minibatches` message; a foreign or newer payload raises SchemaError."""
    if len(value) < _PREAMBLE.size:
        raise SchemaError(f"mini-batch payload has {len(value)} bytes, too short for its preamble")
    magic, version, header_len = _PREAMBLE.unpack_from(value)
    if magic != MAGIC:
        raise SchemaError(f"mini-batch magic is {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise SchemaError(
            f"mini-batch format version is {version}; this reader understands {FORMAT_VERSION}"
        )
    try:
        header = json.loads(value[_PREAMBLE.size : _PREAMBLE.size + header_len])
        body = memoryview(value)[_PREAMBLE.size + header_len :]
        rows = header["rows"]
        strings: dict[str, CodedStrings] = {}
        numbers: dict[str, np.ndarray] = {}
        for col in header["columns"]:
            blob = body[col["offset"] : col["offset"] + col["length"]]
            if col["type"] == "str":
                strings[col["name"]] = _decode_strings(blob, rows)
            else:
                dtype = "<i8" if col["type"] == "i64" else np.uint8
                numbers[col["name"]] = np.frombuffer(blob, dtype=dtype, count=rows).copy()
        kinds = header["kinds"]
        return MiniBatch(
            partition=header["partition"],
            seq=header["seq"],
            watermark=header["watermark"],
            end=header["end"],
            impression_ids=strings["impression_id"].values(),
            user_ids=strings["user_id"].values(),
            ts=numbers["ts"].astype(np.int64),
            label_ts=numbers["label_ts"].astype(np.int64),
            click=numbers["click"],
            conversion=numbers["conversion"],
            kinds=[kinds[k] for k in numbers["kind"].tolist()],
            conv_types=strings["conv_type"].values(),
            scenarios=strings["scenario"].values(),
            features={name: strings[f"f:{name}"] for name in header["fields"]},
            label_windows=_label_windows(header),
        )
    except (ValueError, KeyError, IndexError, TypeError, struct.error) as exc:
        raise SchemaError(f"malformed mini-batch payload: {exc!r}") from exc


def _label_windows(header: dict) -> tuple[int, int] | None:
    """The joiner's (O, A) from a header, None where it does not say them."""
    if "observation_window_s" not in header and "attribution_window_s" not in header:
        return None
    observation, attribution = header["observation_window_s"], header["attribution_window_s"]
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in (observation, attribution)):
        raise SchemaError(f"mini-batch label windows must be integer seconds, got "
                          f"{observation!r} and {attribution!r}")  # fmt: skip
    return observation, attribution
