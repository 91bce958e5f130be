"""Encoding messages into log records and back into :class:`Message` objects, quickly.

A MSG record body is a fixed binary head (``_format.MSG_HEAD``), the topic, a compact
JSON array for the rest of the envelope ("meta") and the payload's JSON. The meta array is
``[id, sender, headers, created_at, correlation_id, workflow_id, reply_to]``, followed by
``last_error`` when the frame flag ``HAS_ERROR`` is set and by ``dedup_key, dedup_expires``
when ``HAS_DEDUP`` is set, so recovery parses JSON only for records that need it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import orjson

from ...message import Message, _build
from ._format import FLAGS_AT, FRAME, MSG_HEAD, RECORD_MAGIC, RecordType

__all__ = [
    "HAS_DEDUP",
    "HAS_ERROR",
    "decode_msg",
    "decode_msgs",
    "encode_meta",
    "encode_msg",
    "encode_msgs",
    "envelope_of",
    "make_message",
]

HAS_ERROR = 1
HAS_DEDUP = 2

_pack_tail = struct.Struct("<BBI").pack
_pack_frame = struct.Struct("<HIBBI").pack
# a frame is magic, crc, then (type, flags, length) which the crc covers with the body
_pack_magic_crc = struct.Struct("<HI").pack
_pack_tail_head = struct.Struct("<BBI" + MSG_HEAD.format.lstrip("<")).pack
_MSG = RecordType.MSG
_MSG_HEAD_SIZE = MSG_HEAD.size
_BODY_AT = FRAME + _MSG_HEAD_SIZE
_pack_head = MSG_HEAD.pack
_unpack_head = MSG_HEAD.unpack_from
_crc32 = zlib.crc32
_dumps = orjson.dumps
_loads = orjson.loads


def encode_meta(
    message_id: str,
    envelope: tuple[Any, ...],
    last_error: str | None = None,
    dedup: tuple[str, float] | None = None,
) -> tuple[bytes, int]:
    """The meta JSON of a message and the frame flags that describe it.

    ``envelope`` is ``(sender, headers, created_at, correlation_id, workflow_id, reply_to)``.
    """
    if last_error is None and dedup is None:
        return _dumps((message_id, *envelope)), 0
    meta: list[Any] = [message_id, *envelope, last_error]
    flags = HAS_ERROR if last_error is not None else 0
    if dedup is not None:
        meta.extend(dedup)
        flags |= HAS_DEDUP
    return _dumps(meta), flags


def envelope_of(message: Message) -> tuple[Any, ...]:
    """The envelope tuple :func:`encode_meta` takes, from a message."""
    return (
        message.sender,
        message.headers,
        message.created_at,
        message.correlation_id,
        message.workflow_id,
        message.reply_to,
    )


def encode_msg(
    key: bytes,
    due: float,
    priority: int,
    attempts: int,
    max_attempts: int,
    state: int,
    topic: bytes,
    meta: bytes,
    payload: bytes,
    flags: int,
) -> bytes:
    """A framed MSG record."""
    body = b"".join(
        (
            _pack_head(key, due, priority, attempts, max_attempts, state, len(topic), len(meta)),
            topic,
            meta,
            payload,
        )
    )
    size = len(body)
    crc = _crc32(body, _crc32(_pack_tail(_MSG, flags, size)))
    return _pack_frame(RECORD_MAGIC, crc, _MSG, flags, size) + body


def encode_msgs(
    keys: list[bytes],
    metas: list[bytes],
    flags: list[int],
    bodies: list[bytes],
    due: float,
    priority: int,
    max_attempts: int,
    state: int,
    topic: bytes,
) -> tuple[bytes, list[int]]:
    """Framed MSG records of messages sharing a topic and state, back to back in one
    ``bytes`` (one write), and each record's size. The batch form of :func:`encode_msg`."""
    tlen = len(topic)
    if len(keys) == 1:  # a single publish: no lists to build
        payload = bodies[0]
        meta = metas[0]
        mlen = len(meta)
        size = _MSG_HEAD_SIZE + tlen + mlen + len(payload)
        rest = b"".join(
            (
                _pack_tail_head(
                    _MSG, flags[0], size, keys[0], due, priority, 0, max_attempts, state, tlen, mlen
                ),
                topic,
                meta,
                payload,
            )
        )
        return _pack_magic_crc(RECORD_MAGIC, _crc32(rest)) + rest, [FRAME + size]
    pack = _pack_tail_head
    pack_start = _pack_magic_crc
    crc32 = _crc32
    join = b"".join
    fixed = _MSG_HEAD_SIZE + tlen
    parts: list[bytes] = []
    add = parts.append
    sizes: list[int] = []
    size_of = sizes.append
    for key, meta, flag, payload in zip(keys, metas, flags, bodies, strict=True):
        mlen = len(meta)
        size = fixed + mlen + len(payload)
        rest = join(
            (
                pack(_MSG, flag, size, key, due, priority, 0, max_attempts, state, tlen, mlen),
                topic,
                meta,
                payload,
            )
        )
        add(pack_start(RECORD_MAGIC, crc32(rest)))
        add(rest)
        size_of(FRAME + size)
    return b"".join(parts), sizes


def decode_msg(
    record: bytes,
) -> tuple[bytes, float, int, int, int, int, str, list[Any], Any, int]:
    """Split a framed MSG record: ``(key, due, priority, attempts, max_attempts, state, topic,
    meta, payload, flags)``. Raises ``ValueError`` on a malformed body."""
    flags = record[FLAGS_AT]
    key, due, priority, attempts, max_attempts, state, tlen, mlen = _unpack_head(record, FRAME)
    view = memoryview(record)
    t_end = _BODY_AT + tlen
    m_end = t_end + mlen
    if m_end > len(record):
        raise ValueError("MSG record shorter than its declared parts")
    topic = str(record[_BODY_AT:t_end], "ascii")
    try:
        meta = _loads(view[t_end:m_end])
        payload = _loads(view[m_end:])
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"MSG record holds invalid JSON: {exc}") from exc
    if not isinstance(meta, list) or len(meta) < 7:
        raise ValueError("MSG record meta is not the expected array")
    return key, due, priority, attempts, max_attempts, state, topic, meta, payload, flags


_unpack_frame_head = struct.Struct("<HIBBI" + MSG_HEAD.format.lstrip("<")).unpack_from
_MAGIC = RECORD_MAGIC

#: what :func:`decode_msgs` gives for a record: ``(key, priority, max_attempts, topic, meta,
#: payload, flags)``, or the reason it is unreadable
Decoded = tuple[bytes, int, int, str, list[Any], Any, int] | str


def decode_msgs(records: Sequence[bytes | None]) -> list[Decoded]:
    """Check and split many framed MSG records at once (a delivered batch): each record's
    frame and checksum are checked, and every meta and payload is parsed by ONE
    ``orjson.loads`` of them all; a record that fails is reported, not raised."""
    heads: list[Any] = []
    parts: list[bytes] = []
    add_part = parts.append
    add_head = heads.append
    crc32 = _crc32
    unpack = _unpack_frame_head
    topics: dict[bytes, str] = {}
    for record in records:
        if not record or len(record) < _BODY_AT:
            add_head("record could not be read back")
            continue
        magic, crc, _, flags, length, key, _, priority, _, max_attempts, _, tlen, mlen = unpack(
            record, 0
        )
        t_end = _BODY_AT + tlen
        m_end = t_end + mlen
        if magic != _MAGIC or FRAME + length != len(record) or crc32(record[6:]) != crc:
            add_head("record checksum mismatch")
        elif m_end > len(record):
            add_head("MSG record shorter than its declared parts")
        else:
            raw = record[_BODY_AT:t_end]
            topic = topics.get(raw)
            if topic is None:
                topic = topics[raw] = str(raw, "ascii")
            add_part(record[t_end:m_end])
            add_part(record[m_end:])
            add_head((key, priority, max_attempts, topic, flags))
    if not parts:
        return heads
    try:
        values = _loads(b"[" + b",".join(parts) + b"]")
    except orjson.JSONDecodeError:
        values = None
    if values is None or len(values) != len(parts):
        values = [_loads_or_error(part) for part in parts]  # find the bad one(s)
    out: list[Decoded] = []
    add = out.append
    at = 0
    for head in heads:
        if type(head) is str:
            add(head)
            continue
        meta = values[at]
        payload = values[at + 1]
        at += 2
        if type(meta) is list and len(meta) >= 7 and not isinstance(payload, _BadJSON):
            key, priority, max_attempts, topic, flags = head
            add((key, priority, max_attempts, topic, meta, payload, flags))
        elif isinstance(meta, _BadJSON) or isinstance(payload, _BadJSON):
            bad = meta if isinstance(meta, _BadJSON) else payload
            add(f"MSG record holds invalid JSON: {bad}")
        else:
            add("MSG record meta is not the expected array")
    return out


_BadJSON = orjson.JSONDecodeError


def _loads_or_error(part: bytes) -> Any:
    try:
        return _loads(part)
    except orjson.JSONDecodeError as exc:
        return exc


_FIELDS = frozenset(Message.model_fields)
_construct_fast = _build  # checked against model_construct at import (``_FAST_OK``)


def _fast_is_faithful() -> bool:
    sample: dict[str, Any] = {
        "id": "x",
        "topic": "t",
        "payload": {"a": [1]},
        "sender": "s",
        "headers": {"h": 1},
        "attempts": 2,
        "max_attempts": 3,
        "priority": 1,
        "created_at": 1.5,
        "correlation_id": "c",
        "workflow_id": "w",
        "reply_to": "r",
        "last_error": "e",
    }
    if set(sample) != _FIELDS:
        return False
    try:
        fast = _construct_fast(dict(sample))
        slow = Message.model_construct(**sample)
        return (
            fast == slow
            and fast.model_dump() == slow.model_dump()
            and fast.model_copy(update={"attempts": 9}).attempts == 9
        )
    except Exception:  # any pydantic internals change: use the public constructor
        return False


_FAST_OK = _fast_is_faithful()


def make_message(
    message_id: str,
    topic: str,
    payload: Any,
    meta: list[Any],
    attempts: int,
    max_attempts: int,
    priority: int,
    last_error: str | None,
) -> Message:
    """A :class:`Message` from decoded record parts (no validation: the data is ours)."""
    data: dict[str, Any] = {
        "id": message_id,
        "topic": topic,
        "payload": payload,
        "sender": meta[1],
        "headers": meta[2],
        "attempts": attempts,
        "max_attempts": max_attempts or None,
        "priority": priority,
        "created_at": meta[3],
        "correlation_id": meta[4],
        "workflow_id": meta[5],
        "reply_to": meta[6],
        "last_error": last_error,
    }
    if _FAST_OK:
        return _construct_fast(data)
    return Message.model_construct(**data)
