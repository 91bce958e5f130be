"""Rebuilding the index from the log when a queue directory is opened. Blocking code.

Every segment is read in order and every record applied to the index, as if the queue
were living its life again. Damage never stops recovery: a stretch of bytes that holds no
valid record is skipped and reported; at the very end of the newest segment it is a torn
write from a crash and is cut off. Messages that were leased when the previous owner
stopped become ready again (their delivery counted), or dead letters if that was their
last attempt.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ...errors import QueueFormatError
from ._format import (
    DEAD_HEAD,
    FORMAT_VERSION,
    FRAME,
    FRAME_STRUCT,
    KEY_SIZE,
    LEASE_ITEM,
    MSG_HEAD,
    RECORD_MAGIC,
    REQUEUE_HEAD,
    SEGMENT_HEADER,
    RecordType,
    SegmentHeaderError,
    State,
    decode_segment_header,
    is_sealed,
    resync,
)
from ._index import Index
from ._log import Log

__all__ = ["RecoveryReport", "recover"]

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_ZOMBIE = State.ZOMBIE
_FREE = State.FREE
_LIVE = (_READY, _DELAYED, _LEASED, _DEAD)

_MSG = RecordType.MSG
_LEASE = RecordType.LEASE
_ACK = RecordType.ACK
_REQUEUE = RecordType.REQUEUE
_DEAD_T = RecordType.DEAD
_DEDUP = RecordType.DEDUP
_HAS_ERROR = 1
_HAS_DEDUP = 2


@dataclass
class RecoveryReport:
    """What reopening a queue directory found."""

    segments: int = 0
    #: True when the index came from the snapshot of a clean close (no log scan)
    from_snapshot: bool = False
    #: why the snapshot was not used ("" if it was)
    snapshot_note: str = ""
    bytes_read: int = 0
    records: int = 0
    messages: int = 0
    elapsed: float = 0.0
    #: human-readable descriptions of damage found (skipped ranges, cut tails)
    problems: list[str] = field(default_factory=list)
    #: (segment, offset): the newest segment was cut there (a torn write)
    truncated: list[tuple[int, int]] = field(default_factory=list)
    #: (segment, start, end) byte ranges skipped as corrupt
    skipped: list[tuple[int, int, int]] = field(default_factory=list)
    #: messages that were leased when the previous owner stopped, now ready again
    released: int = 0
    #: slots of messages that used their last attempt while leased: now dead letters
    exhausted: list[int] = field(default_factory=list)
    #: segment to append to and its valid length, if any
    active: tuple[int, int] | None = None
    #: CRC-32 of the active segment's valid bytes (None: compute it when opening it)
    active_crc: int | None = None
    #: segments whose SEAL record vouched for all of them (no per-record checks needed)
    trusted: int = 0
    #: segments to delete (a newest segment whose header was never completely written)
    discard: list[int] = field(default_factory=list)
    #: dedup_key -> (message id, expires, segment)
    dedup: dict[str, tuple[str, float, int]] = field(default_factory=dict)
    #: segment numbers missing between the oldest and the newest (only damage does that)
    missing_segments: list[int] = field(default_factory=list)
    #: messages known to be lost with them (later records refer to them; a lower bound)
    lost: int = 0

    @property
    def damaged(self) -> bool:
        return bool(self.problems)


def recover(
    log: Log, index: Index, *, now: float, default_max_attempts: int, read_only: bool
) -> RecoveryReport:
    """Fill ``index`` from the segments in ``log.directory``; cut torn tails unless read-only."""
    started = time.perf_counter()
    report = RecoveryReport()
    numbers = log.discover()
    due_of: dict[int, float] = {}
    topic_of: dict[bytes, int] = {}
    # Compaction deletes only the oldest segments, so a hole in the numbering is damage.
    if numbers:
        present = set(numbers)
        report.missing_segments = [
            n for n in range(numbers[0], numbers[-1] + 1) if n not in present
        ]
    gap = report.missing_segments[0] if report.missing_segments else None
    referenced: set[bytes] = set()  # messages later records refer to (only after a gap)
    settled: set[bytes] = set()
    for position, number in enumerate(numbers):
        newest = position == len(numbers) - 1
        data = log.read_all(number)
        report.segments += 1
        report.bytes_read += len(data)
        try:
            decode_segment_header(data)
        except SegmentHeaderError as exc:
            if exc.version is not None and exc.version > FORMAT_VERSION:
                raise QueueFormatError(
                    f"segment {log.path(number)} was written by queue format version "
                    f"{exc.version}; this swarm-runtime reads version {FORMAT_VERSION}: "
                    "upgrade swarm-runtime to open this queue"
                ) from exc
            if newest and len(data) <= SEGMENT_HEADER:
                # Created but never completely written (crash during rollover): nothing in it.
                report.discard.append(number)
                report.problems.append(
                    f"segment {number}: incomplete header ({len(data)} bytes), discarded"
                )
                continue
            report.problems.append(f"segment {number}: header unreadable ({exc}); records kept")
        trusted = is_sealed(data)
        report.trusted += trusted
        track = gap is not None and number > gap
        valid_end = _apply_segment(
            data,
            number,
            index,
            report,
            due_of,
            topic_of,
            now=now,
            newest=newest,
            trusted=trusted,
            unknown=(referenced, settled) if track else None,
        )
        if newest:
            if valid_end < len(data):
                report.truncated.append((number, valid_end))
                report.problems.append(
                    f"segment {number}: torn tail of {len(data) - valid_end} bytes at offset "
                    f"{valid_end} " + ("(left alone: read-only)" if read_only else "cut off")
                )
                if not read_only:
                    log.truncate(number, valid_end)
            report.active = (number, max(valid_end, SEGMENT_HEADER))
            if not trusted:  # a sealed newest segment is not appended to: a new one starts
                report.active_crc = zlib.crc32(memoryview(data)[: report.active[1]])
        del data
    if report.missing_segments:
        report.lost = sum(1 for key in referenced - settled if index.find(key) < 0)
        names = ", ".join(str(n) for n in report.missing_segments[:10])
        more = len(report.missing_segments) - 10
        report.problems.append(
            f"segment(s) {names}{f' and {more} more' if more > 0 else ''} missing from the "
            f"log (deleted or lost: the queue never removes a segment between others): "
            f"at least {report.lost} message(s) lost that later records refer to; messages "
            "in them that were never delivered cannot be counted"
        )
    _finish(index, report, due_of, now=now, default_max_attempts=default_max_attempts)
    index.shrink()
    report.elapsed = time.perf_counter() - started
    return report


def _apply_segment(
    data: bytes,
    number: int,
    index: Index,
    report: RecoveryReport,
    due_of: dict[int, float],
    topic_of: dict[bytes, int],
    *,
    now: float,
    newest: bool,
    trusted: bool = False,
    unknown: tuple[set[bytes], set[bytes]] | None = None,
) -> int:
    """Apply one segment's records; returns where its last valid record ends.

    ``trusted``: the segment's SEAL vouched for every byte, so record checksums are not
    checked again one by one. ``unknown``: two sets collecting the keys of messages not
    (yet) found that lease / requeue / dead-letter records, and ack records, refer to.
    """
    referenced, settled = unknown if unknown is not None else (None, None)
    find = index.find
    state = index.state
    attempts = index.attempts
    errors = index.errors
    keys = index.keys
    loc_append = index.loc.append
    size_append = index.size.append
    topic_append = index.topic.append
    prio_append = index.prio.append
    attempts_append = index.attempts.append
    max_attempts_append = index.max_attempts.append
    state_append = state.append
    assert not index.free, "recovery appends slots in log order"
    unpack_frame = FRAME_STRUCT.unpack_from
    unpack_msg = MSG_HEAD.unpack_from
    msg_head = MSG_HEAD.size
    crc32 = zlib.crc32
    view = memoryview(data)
    size = len(data)
    base = number << 32
    valid_end = SEGMENT_HEADER
    records = 0
    placed = 0
    placed_bytes = 0
    last_tname, last_tlen, last_tid = b"", -1, -1
    pos = SEGMENT_HEADER
    while pos < size:
        # The frame check of _format.scan, inlined: this loop runs once per record.
        if pos + FRAME <= size:
            magic, crc, rtype, flags, length = unpack_frame(data, pos)
            end = pos + FRAME + length
            ok = (
                magic == RECORD_MAGIC
                and end <= size
                and (trusted or crc32(view[pos + 6 : end]) == crc)
            )
        else:
            ok = False
        if not ok or rtype not in RecordType.NAMES:
            resume = resync(data, pos + 1, size)
            stop = size if resume < 0 else resume
            report.skipped.append((number, pos, stop))
            if resume >= 0:
                report.problems.append(
                    f"segment {number}: corrupt record(s) in bytes {pos}..{stop} skipped"
                )
            elif not newest:
                report.problems.append(
                    f"segment {number}: {stop - pos} unreadable bytes at offset {pos} "
                    "(end of a sealed segment) skipped"
                )
            else:
                report.skipped.pop()  # a torn tail: reported (and cut) by the caller
            if resume < 0:
                break
            pos = resume
            continue
        offset = pos
        start = pos + FRAME
        pos = valid_end = end
        records += 1
        if rtype == _MSG:
            if length < msg_head:
                continue  # impossible for a record with a valid checksum; be safe anyway
            key, due, prio, att, max_att, st, tlen, mlen = unpack_msg(data, start)
            t0 = start + msg_head
            if tlen == last_tlen and data.startswith(last_tname, t0):
                tid = last_tid  # most records name the topic of the one before
            else:
                tname = data[t0 : t0 + tlen]
                tid = topic_of.get(tname, -1)
                if tid < 0:
                    try:
                        tid = index.topic_index(tname.decode("ascii")).id
                    except UnicodeDecodeError:
                        continue  # impossible with a valid checksum; be safe anyway
                    topic_of[tname] = tid
                last_tname, last_tlen, last_tid = tname, tlen, tid
            # Index.find then Index.place, fused and inlined (one probe, no free list
            # during recovery): a million of these make up most of a reopen's time.
            table = index.table
            mask = index.mask
            i = crc32(key) & mask
            slot = -1
            while v := table[i]:
                k = (v - 1) * KEY_SIZE
                if keys[k : k + KEY_SIZE] == key:
                    slot = v - 1
                    break
                i = (i + 1) & mask
            if slot >= 0:  # a newer copy of a message we have (compaction moved it)
                index.move(slot, base | offset, end - offset)
                index.topic[slot] = tid
                index.prio[slot] = prio
                attempts[slot] = att
                index.max_attempts[slot] = max_att
                state[slot] = st
            else:
                slot = len(state)
                keys += key
                loc_append(base | offset)
                size_append(end - offset)
                topic_append(tid)
                prio_append(prio)
                attempts_append(att)
                max_attempts_append(max_att)
                state_append(st)
                table[i] = slot + 1
                index.count += 1
                if index.count * 2 > len(table):
                    index.grow()
                placed += 1
                placed_bytes += end - offset
            if st == _DELAYED:
                due_of[slot] = due
            if flags:
                m0 = t0 + tlen
                try:
                    meta = orjson.loads(view[m0 : m0 + mlen])
                except orjson.JSONDecodeError:
                    continue
                if flags & _HAS_ERROR and len(meta) > 7 and isinstance(meta[7], str):
                    errors[slot] = meta[7]
                if flags & _HAS_DEDUP and len(meta) > 9:
                    dedup_key, expires = meta[8], meta[9]
                    if isinstance(dedup_key, str) and isinstance(expires, float) and expires > now:
                        report.dedup[dedup_key] = (meta[0], expires, number)
            continue
        if placed:  # settling below reads the per-segment accounting: bring it up to date
            index.account(number, placed, placed_bytes)
            placed = placed_bytes = 0
        if rtype == _ACK:
            for k in range(start, end - KEY_SIZE + 1, KEY_SIZE):
                slot = find(data[k : k + KEY_SIZE])
                if slot >= 0:
                    index.settle(slot, listed=True)  # recycled in _finish, keeping slot order
                    due_of.pop(slot, None)
                elif settled is not None:
                    settled.add(data[k : k + KEY_SIZE])
        elif rtype == _LEASE:
            for key, att in LEASE_ITEM.iter_unpack(data[start:end]):
                slot = find(key)
                if slot >= 0 and state[slot] in _LIVE:
                    state[slot] = _LEASED
                    attempts[slot] = att
                    due_of.pop(slot, None)
                elif slot < 0 and referenced is not None:
                    referenced.add(key)
        elif rtype == _REQUEUE:
            head = REQUEUE_HEAD.size
            if end - start < head:
                continue
            key, att, due, has_error = REQUEUE_HEAD.unpack_from(data, start)
            slot = find(key)
            if slot < 0 and referenced is not None:
                referenced.add(key)
            if slot >= 0:
                attempts[slot] = att
                if due > 0:
                    state[slot] = _DELAYED
                    due_of[slot] = due
                else:
                    state[slot] = _READY
                    due_of.pop(slot, None)
                if has_error:
                    errors[slot] = data[start + head : end].decode("utf-8", "replace")
        elif rtype == _DEAD_T:
            head = DEAD_HEAD.size
            if end - start < head:
                continue
            key, att = DEAD_HEAD.unpack_from(data, start)
            slot = find(key)
            if slot >= 0:
                state[slot] = _DEAD
                attempts[slot] = att
                errors[slot] = data[start + head : end].decode("utf-8", "replace")
                due_of.pop(slot, None)
        elif rtype == _DEDUP:
            try:
                entries = orjson.loads(view[start:end])
            except orjson.JSONDecodeError:
                continue
            for entry in entries if isinstance(entries, list) else ():
                if (
                    isinstance(entry, list)
                    and len(entry) == 3
                    and isinstance(entry[2], float)
                    and entry[2] > now
                ):
                    report.dedup[entry[0]] = (entry[1], entry[2], number)
    if placed:
        index.account(number, placed, placed_bytes)
    report.records += records
    return valid_end


def _finish(
    index: Index,
    report: RecoveryReport,
    due_of: dict[int, float],
    *,
    now: float,
    default_max_attempts: int,
) -> None:
    """Put every slot in its list, in slot (publish) order; recycle settled slots."""
    state = index.state
    topic = index.topic
    prio = index.prio
    attempts = index.attempts
    max_attempts = index.max_attempts
    topics = index.topics
    delayed = index.delayed
    free = index.free
    live = 0
    appenders: dict[tuple[int, int], Callable[[int], None]] = {}
    ready_counts: dict[int, int] = {}
    for slot in range(len(state)):
        st = state[slot]
        if st == _READY:  # the common case first, and cheaply
            where = (topic[slot], prio[slot])
            append = appenders.get(where)
            if append is None:
                append = appenders[where] = topics[where[0]].ready_list(where[1]).items.append
            append(slot)
            ready_counts[where[0]] = ready_counts.get(where[0], 0) + 1
            continue
        if st in (_ZOMBIE, _FREE):
            state[slot] = _FREE
            free.append(slot)
            continue
        live += 1
        t = topics[topic[slot]]
        if st == _LEASED:
            limit = max_attempts[slot] or default_max_attempts
            if attempts[slot] >= limit:
                st = state[slot] = _DEAD
                index.errors[slot] = (
                    f"the process holding the lease stopped during attempt {attempts[slot]} "
                    f"of {limit}"
                )
                report.exhausted.append(slot)
            else:
                st = state[slot] = _READY
                report.released += 1
        if st == _DELAYED:
            due = due_of.get(slot, 0.0)
            if due > now:
                delayed.push(slot, due)
                t.n_delayed += 1
                continue
            st = state[slot] = _READY
        if st == _READY:
            t.ready_list(prio[slot]).items.append(slot)
            t.n_ready += 1
        elif st == _DEAD:
            t.dead[slot] = None
    for tid, count in ready_counts.items():
        topics[tid].n_ready += count
        live += count
    free.reverse()  # reuse low slots first
    report.messages = live
