"""The file queue's on-disk format: segment headers, record frames and record bodies.

Everything that knows a byte offset lives here, so ``queue/README.md`` and this module
describe the same thing. Format version 1:

* a segment file starts with a 24-byte header: magic ``SWRMQSEG``, format version (u32),
  segment number (u64), CRC-32 of the previous 20 bytes (u32);
* then records, each framed as ``magic u16 | crc u32 | type u8 | flags u8 | length u32``
  followed by ``length`` body bytes; the CRC-32 covers everything after itself (type,
  flags, length and body), so a damaged length is caught like damaged data.

All integers are little-endian. Bodies are described next to their encoders below.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator

__all__ = [
    "FORMAT_VERSION",
    "FRAME",
    "SEGMENT_HEADER",
    "RecordType",
    "SegmentHeaderError",
    "check_record",
    "decode_segment_header",
    "encode_segment_header",
    "frame",
    "is_sealed",
    "message_key",
    "scan",
    "seal_record",
]

FORMAT_VERSION = 1

SEGMENT_MAGIC = b"SWRMQSEG"
_SEGMENT_HEADER = struct.Struct("<8sIQI")
SEGMENT_HEADER = _SEGMENT_HEADER.size  # 24

RECORD_MAGIC = 0x5157  # b"WQ" on disk
_RECORD_MAGIC_BYTES = struct.pack("<H", RECORD_MAGIC)
_FRAME = FRAME_STRUCT = struct.Struct("<HIBBI")
_FRAME_TAIL = struct.Struct("<BBI")
FRAME = _FRAME.size  # 12
FLAGS_AT = 7  # offset of the flags byte in a frame
MAX_BODY = 256 * 1024 * 1024  # a frame claiming more than this is damage, not data


class RecordType:
    """Record type codes (the frame's ``type`` byte)."""

    MSG = 1  # a message with its full envelope and current state (publish, relocation)
    LEASE = 2  # (key, attempts) pairs: delivered, attempts counted
    ACK = 3  # keys: settled for good (ack, purge)
    REQUEUE = 4  # key, attempts, due, error: ready again (nack, release, replay)
    DEAD = 5  # key, attempts, error: moved to the dead-letter queue
    DEDUP = 6  # JSON [[dedup_key, message_id, expires], ...] carried over by compaction
    SEAL = 7  # the last record of a full segment: CRC-32 of every byte before it

    NAMES = {1: "msg", 2: "lease", 3: "ack", 4: "requeue", 5: "dead", 6: "dedup", 7: "seal"}


class State:
    """Message states, in the index and in MSG records."""

    FREE = 0
    READY = 1
    DELAYED = 2
    LEASED = 3
    DEAD = 4
    ZOMBIE = 5  # settled, but a ready/delay list still references the slot
    PARKED = 6  # prefetched: delivery recorded, waiting in memory for the next subscribe


# ---------------------------------------------------------------------------- keys


_HEX = frozenset("0123456789abcdef")


def message_key(message_id: str) -> bytes:
    """The 16-byte key a message id is stored under.

    Ids made by :func:`swarm_runtime.message.new_id` (32 lowercase hex digits) are stored
    as their bytes; any other id as its 128-bit BLAKE2b digest.
    """
    if len(message_id) == 32:
        try:
            key = bytes.fromhex(message_id)
        except ValueError:
            pass
        else:
            if len(key) == 16 and key.hex() == message_id:
                return key
    return hashlib.blake2b(message_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# ---------------------------------------------------------------------------- segments


class SegmentHeaderError(ValueError):
    """A segment header is damaged or from an unknown format version (``version`` set)."""

    def __init__(self, message: str, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version


def encode_segment_header(number: int) -> bytes:
    head = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, number, 0)[:20]
    return head + struct.pack("<I", zlib.crc32(head))


def decode_segment_header(data: bytes | memoryview) -> int:
    """The segment number in a header; raises :class:`SegmentHeaderError` if unusable."""
    if len(data) < SEGMENT_HEADER:
        raise SegmentHeaderError(f"header is {len(data)} bytes long, expected {SEGMENT_HEADER}")
    magic, version, number, crc = _SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC:
        raise SegmentHeaderError("not a queue segment (bad magic)")
    if zlib.crc32(bytes(data[:20])) != crc:
        raise SegmentHeaderError("segment header checksum mismatch")
    if version != FORMAT_VERSION:
        raise SegmentHeaderError(f"segment format version {version}", version=version)
    return int(number)


# ---------------------------------------------------------------------------- frames


def frame(record_type: int, body: bytes | bytearray, flags: int = 0) -> bytes:
    """Frame one record: magic, CRC-32, type, flags and length, then the body."""
    tail = _FRAME_TAIL.pack(record_type, flags, len(body))
    crc = zlib.crc32(body, zlib.crc32(tail))
    return _RECORD_MAGIC_BYTES + struct.pack("<I", crc) + tail + bytes(body)


_SEAL_BODY = struct.Struct("<I")
SEAL_SIZE = FRAME + _SEAL_BODY.size  # 16


def seal_record(crc: int) -> bytes:
    """The SEAL record closing a segment whose bytes so far have CRC-32 ``crc``."""
    return frame(RecordType.SEAL, _SEAL_BODY.pack(crc))


def is_sealed(data: bytes) -> bool:
    """True if ``data`` (a whole segment) ends with a SEAL record that vouches for all of it.

    One CRC over the whole segment (fast: zlib does gigabytes a second) instead of one per
    record: recovery skips the per-record checks of a segment that passes.
    """
    if len(data) < SEGMENT_HEADER + SEAL_SIZE:
        return False
    at = len(data) - SEAL_SIZE
    magic, crc, rtype, _flags, length = _FRAME.unpack_from(data, at)
    if magic != RECORD_MAGIC or rtype != RecordType.SEAL or length != _SEAL_BODY.size:
        return False
    view = memoryview(data)
    if zlib.crc32(view[at + 6 :]) != crc:
        return False
    (whole,) = _SEAL_BODY.unpack_from(data, at + FRAME)
    return bool(zlib.crc32(view[:at]) == whole)


def check_record(record: bytes) -> bool:
    """True if ``record`` (frame included, nothing after it) is intact."""
    if len(record) < FRAME:
        return False
    magic, crc, _, _, length = _FRAME.unpack_from(record, 0)
    return bool(
        magic == RECORD_MAGIC
        and FRAME + length == len(record)
        and zlib.crc32(memoryview(record)[6:]) == crc
    )


def _valid_at(data: bytes, pos: int, end: int) -> bool:
    """True if a valid record is framed at ``pos``."""
    if pos + FRAME > end:
        return False
    magic, crc, rtype, _flags, length = _FRAME.unpack_from(data, pos)
    stop = pos + FRAME + length
    return (
        magic == RECORD_MAGIC
        and stop <= end
        and rtype in RecordType.NAMES
        and zlib.crc32(memoryview(data)[pos + 6 : stop]) == crc
    )


def resync(data: bytes, pos: int, end: int) -> int:
    """Offset of the next valid record at or after ``pos``, or -1."""
    find = data.find
    while True:
        pos = find(_RECORD_MAGIC_BYTES, pos, end)
        if pos < 0:
            return -1
        if _valid_at(data, pos, end):
            return pos
        pos += 1


def scan(data: bytes, start: int = SEGMENT_HEADER) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(offset, type, body_start, body_end)`` for each valid record, in order.

    A damaged stretch (bad magic, impossible length, checksum mismatch) yields
    ``(-1, 0, start, end)`` instead, the damaged byte range in the last two fields;
    scanning resumes at the next valid record, if any (``end == len(data)`` otherwise).
    """
    end = len(data)
    unpack = _FRAME.unpack_from
    crc32 = zlib.crc32
    view = memoryview(data)
    names = RecordType.NAMES
    pos = start
    while pos < end:
        if pos + FRAME <= end:
            magic, crc, rtype, _flags, length = unpack(data, pos)
            stop = pos + FRAME + length
            if (
                magic == RECORD_MAGIC
                and stop <= end
                and rtype in names
                and crc32(view[pos + 6 : stop]) == crc
            ):
                yield pos, rtype, pos + FRAME, stop
                pos = stop
                continue
        resume = resync(data, pos + 1, end)
        if resume < 0:
            yield -1, 0, pos, end
            return
        yield -1, 0, pos, resume
        pos = resume


# ---------------------------------------------------------------------------- bodies

#: MSG body: key, due (0 = now), priority, attempts, max_attempts (0 = queue default),
#: state, topic length, meta length; then topic (ASCII), meta (JSON), payload (JSON).
MSG_HEAD = struct.Struct("<16sdqIIBBI")
#: LEASE body: repeated (key, attempts).
LEASE_ITEM = struct.Struct("<16sI")
#: REQUEUE body: key, attempts, due (0 = now), has_error; then the error (UTF-8).
REQUEUE_HEAD = struct.Struct("<16sIdB")
#: DEAD body: key, attempts; then the error (UTF-8).
DEAD_HEAD = struct.Struct("<16sI")
KEY_SIZE = 16
