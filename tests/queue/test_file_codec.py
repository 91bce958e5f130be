"""The file queue's record codec: a batch decode agrees with the one-record decode."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from swarm_runtime.queue.file._codec import decode_msg, decode_msgs, encode_meta, encode_msgs
from swarm_runtime.queue.file._format import FRAME, check_record

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _records(payloads: list[object]) -> list[bytes]:
    keys = [i.to_bytes(16, "big") for i in range(len(payloads))]
    metas = [encode_meta(k.hex(), (None, {}, 1.5, None, None, None))[0] for k in keys]
    data, sizes = encode_msgs(
        keys,
        metas,
        [0] * len(keys),
        [orjson.dumps(p) for p in payloads],
        0.0,
        3,
        5,
        0,
        b"topic",
    )
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    return out


@given(
    st.lists(_json, min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 400), st.integers(1, 255)), max_size=4),
    st.lists(st.integers(0, 11), max_size=3),
)
def test_decode_msgs_matches_decode_msg_and_reports_each_damaged_record(
    payloads: list[object],
    flips: list[tuple[int, int, int]],
    missing: list[int],
) -> None:
    """Every intact record decodes as decode_msg has it; a flipped byte or a missing record
    is reported for that record alone, whatever else is in the batch."""
    records: list[bytes | None] = list(_records(payloads))
    for i, pos, xor in flips:
        if i < len(records) and records[i] is not None:
            record = bytearray(records[i])  # type: ignore[arg-type]
            record[pos % len(record)] ^= xor
            records[i] = bytes(record)
    for i in missing:
        if i < len(records):
            records[i] = None
    decoded = decode_msgs(records)
    assert len(decoded) == len(records)
    for record, item, payload in zip(records, decoded, payloads, strict=True):
        if record is None:
            assert item == "record could not be read back"
            continue
        try:
            intact = check_record(record) and len(record) > FRAME
            one = decode_msg(record) if intact else None
        except ValueError:
            one = None
        if one is None:
            assert isinstance(item, str), "a damaged record must be reported"
            continue
        assert not isinstance(item, str)
        key, priority, max_attempts, topic, meta, got, _ = item
        assert (key, priority, max_attempts, topic, meta) == (
            one[0],
            one[2],
            one[4],
            one[6],
            one[7],
        )
        assert got == one[8] == payload


def test_decode_msgs_names_the_record_with_bad_json_and_decodes_the_rest() -> None:
    """A record whose checksum holds but whose JSON does not parse is reported alone."""
    good = _records([{"a": 1}, [2], "three"])
    # rebuild the bad record with a payload that is not JSON but a valid frame
    keys = [b"\x00" * 16]
    meta = encode_meta("0" * 32, (None, {}, 1.5, None, None, None))[0]
    bad, _ = encode_msgs(keys, [meta], [0], [b"{not json"], 0.0, 0, 0, 0, b"topic")
    decoded = decode_msgs([good[0], bad, good[1], good[2]])
    assert isinstance(decoded[1], str)
    assert "invalid JSON" in decoded[1]
    payloads = [item[5] for item in (decoded[0], decoded[2], decoded[3])]  # type: ignore[index]
    assert payloads == [{"a": 1}, [2], "three"]
