"""The file queue's building blocks: the index's hash table, delay buckets, record framing."""

from __future__ import annotations

import os
import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.message import new_id
from swarm_runtime.queue.file._format import (
    FRAME,
    SEGMENT_HEADER,
    RecordType,
    check_record,
    encode_segment_header,
    frame,
    is_sealed,
    message_key,
    scan,
    seal_record,
)
from swarm_runtime.queue.file._index import DelayQueue, Index

KEYS = st.binary(min_size=16, max_size=16)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "drop"]), st.integers(0, 300)), min_size=1, max_size=600
    )
)
def test_hash_table_agrees_with_a_dict(ops: list[tuple[str, int]]) -> None:
    """Random inserts and deletes (with growth and backward-shift deletion) match a dict."""
    index = Index()
    keys = [os.urandom(16) for _ in range(301)]
    # sequential keys too: a hash table must not care how ids are made
    keys[::3] = [struct.pack(">QQ", 0, i) for i in range(len(keys[::3]))]
    model: dict[bytes, int] = {}
    for op, n in ops:
        key = keys[n]
        if op == "add" and key not in model:
            slot = index.place(key, 1 << 32, 100, 0, 0, 0, 0, 1)
            index.account(1, 1, 100)
            model[key] = slot
        elif op == "drop" and key in model:
            index.settle(model.pop(key), listed=False)
        assert len(index) == len(model)
    for key in keys:
        assert index.find(key) == model.get(key, -1)


@settings(max_examples=60, deadline=None)
@given(
    placed=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 500)), min_size=1, max_size=80),
    data=st.data(),
)
def test_settle_many_does_what_settle_does_one_by_one(
    placed: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Settling a batch leaves the hash table, free slots and per-segment tallies exactly as
    settling its slots one at a time does, and returns their keys in order."""
    one, many = Index(), Index()
    keys = [struct.pack(">QQ", i % 7, i) for i in range(len(placed))]
    for index in (one, many):
        for key, (segment, size) in zip(keys, placed, strict=True):
            index.place(key, segment << 32, size, 0, 0, 0, 0, 1)
            index.account(segment, 1, size)
    slots = data.draw(st.lists(st.sampled_from(range(len(keys))), unique=True))
    for slot in slots:
        one.settle(slot, listed=False)
    assert many.settle_many(slots) == b"".join(keys[s] for s in slots)
    assert len(many) == len(one)
    assert [many.find(k) for k in keys] == [one.find(k) for k in keys]
    assert (many.seg_live, many.seg_bytes, many.emptied) == (
        one.seg_live,
        one.seg_bytes,
        one.emptied,
    )
    assert sorted(many.free) == sorted(one.free)
    assert list(many.state) == list(one.state)


def test_delay_queue_releases_in_due_order_across_buckets() -> None:
    """Delayed slots come out exactly when due, ordered by due time, whatever the bucket."""
    delayed = DelayQueue()
    dues = {1: 10.9, 2: 10.1, 3: 12.0, 4: 10.5, 5: 11.2}
    for slot, due in dues.items():
        delayed.push(slot, due)
    assert delayed.next_due() == 10.1
    assert delayed.pop_due(10.0) == []
    assert [s for _, s in delayed.pop_due(10.6)] == [2, 4]
    assert [s for _, s in delayed.pop_due(11.5)] == [1, 5]
    assert delayed.next_due() == 12.0
    assert [s for _, s in delayed.pop_due(100)] == [3]
    assert delayed.next_due() is None


@given(message_id=st.text(min_size=1, max_size=80))
def test_message_keys_are_16_bytes_and_deterministic(message_id: str) -> None:
    """Any id maps to the same 16-byte key every time."""
    key = message_key(message_id)
    assert len(key) == 16
    assert message_key(message_id) == key


def test_hex_ids_are_their_own_keys_and_case_matters() -> None:
    """new_id() ids are stored as their bytes; an upper-case twin is a different id."""
    message_id = new_id()
    assert message_key(message_id) == bytes.fromhex(message_id)
    assert message_key(message_id.upper()) != message_key(message_id)
    assert message_key("order-42") != message_key("order-43")


@settings(max_examples=80)
@given(
    bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=20),
    flip=st.integers(0, 10_000),
)
def test_scan_finds_every_intact_record_around_damage(bodies: list[bytes], flip: int) -> None:
    """After one flipped byte, scanning still yields every record that was not hit."""
    records = [frame(RecordType.ACK, body) for body in bodies]
    data = bytearray(encode_segment_header(1) + b"".join(records))
    starts = []
    pos = SEGMENT_HEADER
    for record in records:
        starts.append((pos, pos + len(record)))
        pos += len(record)
    where = SEGMENT_HEADER + flip % (len(data) - SEGMENT_HEADER)
    data[where] ^= 0x5A
    found = {(off, end) for off, _, _, end in scan(bytes(data)) if off >= 0}
    intact = {(a, b) for a, b in starts if not a <= where < b}
    assert intact <= found
    assert all(check_record(bytes(data[a:b])) for a, b in found)


def test_seal_vouches_for_the_whole_segment_and_nothing_else() -> None:
    """A segment ending in a matching SEAL is sealed; any changed byte breaks the seal."""
    body = encode_segment_header(7) + frame(RecordType.ACK, b"k" * 16) * 3
    sealed = body + seal_record(zlib.crc32(body))
    assert is_sealed(sealed)
    assert not is_sealed(body)
    for i in range(0, len(sealed), 7):
        damaged = bytearray(sealed)
        damaged[i] ^= 1
        assert not is_sealed(bytes(damaged))
    assert len(seal_record(0)) == FRAME + 4
