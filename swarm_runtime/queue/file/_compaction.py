"""Compaction: deleting settled segments, moving the few survivors out of old ones.

Segments are deleted oldest first, and only when no message's current record lives in
them, so an ACK record is never deleted before the message it settles. When three or more
segments are sealed and the oldest is mostly settled, its survivors are copied to the end
of the log (fsync'd) so it can go; unexpired dedup keys are carried over in a DEDUP record.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..._logging import get_logger
from ...errors import QueueError
from . import _codec
from ._codec import HAS_DEDUP, decode_msg, encode_msg
from ._core import FileQueueCore
from ._format import FRAME, KEY_SIZE, MSG_HEAD, RecordType, State, frame, scan

__all__ = ["CompactionMixin", "Move"]

log = get_logger("swarm_runtime.queue.file")

#: seconds before the same segment is read again for relocation after an attempt that
#: did not empty it (a survivor that could not be moved, say)
RELOCATION_RETRY = 30.0

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_PARKED = State.PARKED


class Move:
    """A relocated copy of a message waiting for its batch to reach the disk."""

    __slots__ = ("key", "offset", "old_loc", "size", "slot")

    def __init__(self, slot: int, key: bytes, old_loc: int, offset: int, size: int) -> None:
        self.slot = slot
        self.key = key
        self.old_loc = old_loc
        self.offset = offset
        self.size = size


class CompactionMixin(FileQueueCore):
    """Keeps the directory from growing with throughput (see the module docstring)."""

    async def _compact(self) -> None:
        """Delete segments that hold nothing live; move the few live messages out of an old,
        mostly settled segment so it can go too."""
        if self.read_only or self._compacting:
            return
        self._compacting = True
        self._compact_due = False
        self._index.emptied = False
        try:
            await self._compact_once()
        except (OSError, QueueError) as exc:
            # Compaction only saves space: never fail the publish or subscribe that ran it.
            log.warning(
                "queue compaction failed; will retry", directory=str(self.directory), error=str(exc)
            )
        finally:
            self._compacting = False

    async def _compact_once(self) -> None:
        """One round: delete the settled prefix of the log, or relocate its head."""
        index = self._index
        active = self._active_segment
        sealed = [n for n in list(self._log.numbers) if n != active]
        doomed = []
        for number in sealed:
            if index.seg_live.get(number, 0):
                break
            doomed.append(number)
        if doomed:
            self._carry_dedup(set(doomed))
            self._frame_acks()
            await self._journal.io(lambda: self._log.delete(doomed))
            return
        # A few long-lived messages (dead letters, far-off delays) must not pin a long
        # log: once three segments are sealed and the oldest is mostly settled, move
        # its survivors to the end so it can go.
        if len(sealed) < 3:
            return
        head = sealed[0]
        if index.seg_bytes.get(head, 0) * 8 > self.segment_size:
            return
        tried = self._relocation_tried.get(head)
        if tried is not None and time.monotonic() - tried < RELOCATION_RETRY:
            return  # it did not empty the segment last time: do not reread it every tick
        self._relocation_tried = {head: time.monotonic()}
        await self._relocate(head)

    def _carry_dedup(self, doomed: set[int]) -> None:
        now = self.clock.time()
        carried = []
        for dedup_key, (message_id, expires, segment) in list(self._dedup.items()):
            if segment in doomed and expires > now:
                carried.append([dedup_key, message_id, expires])
                self._dedup[dedup_key] = (message_id, expires, self._active_segment)
        if carried:
            if self._acks:
                self._frame_acks()
            # fsync'd whatever the policy: the segment holding the keys is deleted next
            self._journal.add(frame(RecordType.DEDUP, orjson.dumps(carried)), True, True)

    async def _relocate(self, number: int) -> None:
        """Copy the live messages of segment ``number`` to the end of the log."""
        index = self._index

        def candidates() -> list[tuple[int, bytes]]:
            # Runs in the worker thread while the loop keeps changing the index: the check
            # here only thins the list out; every survivor is checked again on the loop.
            data = self._log.read_all(number)
            out = []
            for offset, rtype, start, end in scan(data):
                if rtype != RecordType.MSG:
                    continue
                loc = (number << 32) | offset
                slot = index.find(data[start : start + KEY_SIZE])
                if slot >= 0 and index.loc[slot] == loc:
                    out.append((loc, data[offset:end]))
            return out

        found = await self._journal.io(candidates)
        due_of = {slot: due for due, slot in index.delayed.entries()}
        journal = self._journal
        batch = None
        for loc, record in found:
            key = record[12:28]
            slot = index.find(key)
            if slot < 0 or index.loc[slot] != loc:
                continue
            st = index.state[slot]
            if st not in (_READY, _DELAYED, _LEASED, _DEAD, _PARKED):
                continue
            if st == _PARKED:
                st = _LEASED  # on disk a prefetched message is a leased one
            try:
                _, _, priority, _, max_attempts, _, topic, meta, _, flags = decode_msg(record)
            except ValueError:
                continue
            payload_at = len(record) - _payload_len(record)
            message_meta = meta[:7]
            error = index.errors.get(slot)
            dedup = None
            if flags & HAS_DEDUP and len(meta) > 9:
                dedup = (meta[8], meta[9])
            extra: list[Any] = []
            new_flags = 0
            if error is not None or dedup is not None:
                extra.append(error)
                if error is not None:
                    new_flags |= _codec.HAS_ERROR
            if dedup is not None:
                extra.extend(dedup)
                new_flags |= HAS_DEDUP
            copy = encode_msg(
                key,
                due_of.get(slot, 0.0) if st == _DELAYED else 0.0,
                priority,
                index.attempts[slot],
                max_attempts,
                st,
                topic.encode("ascii"),
                orjson.dumps(message_meta + extra),
                record[payload_at:],
                new_flags,
            )
            if self._acks:
                self._frame_acks()
            # fsync'd whatever the policy: the segment holding the original is deleted next
            batch = journal.add(copy, sync=True)
            batch.posts.append(Move(slot, key, loc, batch.size - len(copy), len(copy)))
        if batch is not None:
            await journal.wait(batch)


def _payload_len(record: bytes) -> int:
    _, _, _, _, _, _, tlen, mlen = MSG_HEAD.unpack_from(record, FRAME)
    return len(record) - FRAME - MSG_HEAD.size - int(tlen) - int(mlen)
