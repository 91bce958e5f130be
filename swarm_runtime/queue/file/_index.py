"""The file queue's in-memory index: compact columns, not one Python object per message.

Payloads stay on disk; per message the index keeps about 60 bytes in typed arrays (key,
location, size, topic, priority, attempts, max attempts, state), a slot in an
open-addressing hash table (key -> slot) and a slot number in a ready list or a delay
bucket. Only leased messages, dead letters and messages with an error get Python objects.

Every ready (or delayed) slot sits in exactly one ready list (or delay bucket). Settling a
ready or delayed message marks its slot ``ZOMBIE``; the slot is recycled when its list
entry is reached, so lists never need a search.
"""

from __future__ import annotations

import heapq
import math
import zlib
from array import array
from collections import deque
from collections.abc import Iterator
from typing import Any

from ._format import KEY_SIZE, State

__all__ = ["DelayQueue", "Index", "ReadyList", "TopicIndex"]

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_FREE = State.FREE
_ZOMBIE = State.ZOMBIE

_MIN_TABLE = 1024


class ReadyList:
    """A FIFO of slots: an array plus a read position, compacted as it is consumed."""

    __slots__ = ("head", "items")

    def __init__(self) -> None:
        self.items = array("I")
        self.head = 0

    def __len__(self) -> int:
        return len(self.items) - self.head

    def compact(self) -> None:
        if self.head > 4096 and self.head * 2 > len(self.items):
            del self.items[: self.head]
            self.head = 0

    def __iter__(self) -> Iterator[int]:
        items = self.items
        for i in range(self.head, len(items)):
            yield items[i]


class TopicIndex:
    """One topic: ready lists by priority, counters, dead letters and waiting subscribers."""

    __slots__ = (
        "ascii",
        "dead",
        "id",
        "landed",
        "lists",
        "n_delayed",
        "n_leased",
        "n_parked",
        "n_ready",
        "name",
        "order",
        "parked",
        "prefetching",
        "waiters",
    )

    def __init__(self, topic_id: int, name: str) -> None:
        self.id = topic_id
        self.name = name
        self.ascii = name.encode("ascii")
        self.lists: dict[int, ReadyList] = {}
        self.order: list[int] = []  # priorities that have a ready list, highest first
        self.n_ready = 0
        self.n_delayed = 0
        self.n_leased = 0
        self.n_parked = 0
        self.parked: deque[tuple[int, bytes]] = deque()  # prefetched (slot, record), in order
        self.prefetching = 0  # slots whose prefetch read is under way
        self.landed: Any = None  # an event set when that read is back
        self.dead: dict[int, None] = {}  # dead-letter slots, oldest first
        self.waiters: deque[Any] = deque()

    def ready_list(self, priority: int) -> ReadyList:
        rl = self.lists.get(priority)
        if rl is None:
            rl = self.lists[priority] = ReadyList()
            self.order.append(priority)
            self.order.sort(reverse=True)
        return rl

    @property
    def busy(self) -> bool:
        return bool(self.n_ready or self.n_delayed or self.n_leased or self.n_parked or self.dead)


class DelayQueue:
    """Delayed slots bucketed by whole second of their due time, with exact due times kept."""

    __slots__ = ("buckets", "heap")

    def __init__(self) -> None:
        self.buckets: dict[int, tuple[array[float], array[int]]] = {}
        self.heap: list[int] = []

    def push(self, slot: int, due: float) -> None:
        key = math.floor(due)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = (array("d"), array("I"))
            heapq.heappush(self.heap, key)
        bucket[0].append(due)
        bucket[1].append(slot)

    def next_due(self) -> float | None:
        if not self.heap:
            return None
        return min(self.buckets[self.heap[0]][0])

    def pop_due(self, now: float) -> list[tuple[float, int]]:
        """Remove and return ``(due, slot)`` of every entry due at ``now``, by due time."""
        out: list[tuple[float, int]] = []
        heap = self.heap
        while heap and heap[0] <= now:
            key = heap[0]
            dues, slots = self.buckets[key]
            if key + 1 <= now:
                heapq.heappop(heap)
                del self.buckets[key]
                out.extend(zip(dues, slots, strict=True))
                continue
            keep_d: array[float] = array("d")
            keep_s: array[int] = array("I")
            for due, slot in zip(dues, slots, strict=True):
                if due <= now:
                    out.append((due, slot))
                else:
                    keep_d.append(due)
                    keep_s.append(slot)
            if keep_s:
                self.buckets[key] = (keep_d, keep_s)
            else:
                heapq.heappop(heap)
                del self.buckets[key]
            break
        out.sort()
        return out

    def entries(self) -> Iterator[tuple[float, int]]:
        for dues, slots in self.buckets.values():
            yield from zip(dues, slots, strict=True)

    def remove_slots(self, doomed: set[int]) -> None:
        """Drop the given slots from every bucket (purge)."""
        for key in list(self.buckets):
            dues, slots = self.buckets[key]
            if not any(s in doomed for s in slots):
                continue
            keep = [(d, s) for d, s in zip(dues, slots, strict=True) if s not in doomed]
            if keep:
                self.buckets[key] = (
                    array("d", [d for d, _ in keep]),
                    array("I", [s for _, s in keep]),
                )
            else:
                del self.buckets[key]
        self.heap = list(self.buckets)
        heapq.heapify(self.heap)


class Index:
    """Every unsettled message and dead letter of a queue, by slot number."""

    def __init__(self) -> None:
        self.keys = bytearray()
        self.loc: array[int] = array("Q")  # segment << 32 | offset of the message's MSG record
        self.size: array[int] = array("I")  # the MSG record's length, frame included
        self.topic: array[int] = array("I")
        self.prio: array[int] = array("q")
        self.attempts: array[int] = array("I")
        self.max_attempts: array[int] = array("I")  # 0: the queue's default
        self.state = bytearray()
        self.free: array[int] = array("I")
        self.errors: dict[int, str] = {}  # last error of messages that have one
        self.table: array[int] = array("I", bytes(4 * _MIN_TABLE))  # slot + 1, 0 = empty
        self.mask = _MIN_TABLE - 1
        self.count = 0
        self.topics: list[TopicIndex] = []
        self.by_name: dict[str, TopicIndex] = {}
        self.delayed = DelayQueue()
        self.seg_live: dict[int, int] = {}  # segment -> messages whose MSG record is there
        self.seg_bytes: dict[int, int] = {}  # segment -> bytes of those records
        self.emptied = False  # some segment's last live message went: compaction may help

    # ------------------------------------------------------------------ topics

    def topic_index(self, name: str) -> TopicIndex:
        topic = self.by_name.get(name)
        if topic is None:
            topic = self.by_name[name] = TopicIndex(len(self.topics), name)
            self.topics.append(topic)
        return topic

    # ------------------------------------------------------------------ slots

    def __len__(self) -> int:
        return self.count

    def account(self, segment: int, count: int, size: int) -> None:
        """``count`` more messages (``size`` bytes) have their MSG record in ``segment``."""
        self.seg_live[segment] = self.seg_live.get(segment, 0) + count
        self.seg_bytes[segment] = self.seg_bytes.get(segment, 0) + size

    def place(
        self,
        key: bytes,
        loc: int,
        size: int,
        topic: int,
        prio: int,
        attempts: int,
        max_attempts: int,
        state: int,
    ) -> int:
        """A slot for a new message (its key must not be in the index); the caller updates
        the per-segment accounting (:meth:`account`), once per batch."""
        free = self.free
        if free:
            slot = free.pop()
            k = slot * KEY_SIZE
            self.keys[k : k + KEY_SIZE] = key
            self.loc[slot] = loc
            self.size[slot] = size
            self.topic[slot] = topic
            self.prio[slot] = prio
            self.attempts[slot] = attempts
            self.max_attempts[slot] = max_attempts
            self.state[slot] = state
        else:
            slot = len(self.state)
            self.keys += key
            self.loc.append(loc)
            self.size.append(size)
            self.topic.append(topic)
            self.prio.append(prio)
            self.attempts.append(attempts)
            self.max_attempts.append(max_attempts)
            self.state.append(state)
        # hash-table insert, inlined: this runs once per published message
        self.count += 1
        if self.count * 2 > len(self.table):
            self._grow()
        table = self.table
        mask = self.mask
        i = zlib.crc32(key) & mask
        while table[i]:
            i = (i + 1) & mask
        table[i] = slot + 1
        return slot

    def place_many(
        self,
        keys: list[bytes],
        loc: int,
        sizes: list[int],
        topic: int,
        prio: int,
        max_attempts: int,
        state: int,
    ) -> list[int]:
        """Slots for new messages whose records lie back to back from ``loc`` (the batch
        form of :meth:`place`; attempts 0). Returns the slots in order."""
        count = len(keys)
        if self.free:
            slots = []
            for key, size in zip(keys, sizes, strict=True):
                slots.append(self.place(key, loc, size, topic, prio, 0, max_attempts, state))
                loc += size
            return slots
        first = len(self.state)
        locs = []
        for size in sizes:
            locs.append(loc)
            loc += size
        self.keys += b"".join(keys)
        self.loc.extend(locs)
        self.size.extend(sizes)
        self.topic.extend([topic] * count)
        self.prio.extend([prio] * count)
        self.attempts.extend([0] * count)
        self.max_attempts.extend([max_attempts] * count)
        self.state.extend([state] * count)
        self.count += count
        while self.count * 2 > len(self.table):
            self._grow()
        table = self.table
        mask = self.mask
        crc32 = zlib.crc32
        slot = first
        for key in keys:
            slot += 1
            i = crc32(key) & mask
            while table[i]:
                i = (i + 1) & mask
            table[i] = slot
        return list(range(first, first + count))

    def move(self, slot: int, loc: int, size: int) -> None:
        """The slot's MSG record now lives at ``loc`` (relocation, or a newer copy)."""
        self._unaccount(slot)
        self.loc[slot] = loc
        self.size[slot] = size
        seg = loc >> 32
        self.seg_live[seg] = self.seg_live.get(seg, 0) + 1
        self.seg_bytes[seg] = self.seg_bytes.get(seg, 0) + size

    def _unaccount(self, slot: int) -> None:
        seg = self.loc[slot] >> 32
        left = self.seg_live[seg] - 1
        if left:
            self.seg_live[seg] = left
            self.seg_bytes[seg] -= self.size[slot]
        else:
            del self.seg_live[seg]
            del self.seg_bytes[seg]
            self.emptied = True

    def settle(self, slot: int, *, listed: bool) -> None:
        """Forget a message. ``listed``: a ready list or delay bucket still holds the slot."""
        self._delete(self.key(slot))
        self._unaccount(slot)
        self.errors.pop(slot, None)
        if listed:
            self.state[slot] = _ZOMBIE
        else:
            self.state[slot] = _FREE
            self.free.append(slot)

    def settle_many(self, slots: list[int]) -> bytes:
        """Forget messages that no list holds (leased ones): the batch form of
        :meth:`settle` with ``listed=False``. Returns their keys, back to back."""
        keys = self.keys
        loc = self.loc
        size = self.size
        state = self.state
        errors = self.errors
        delete = self._delete
        free = self.free.append
        gone: dict[int, list[int]] = {}  # segment -> [messages, bytes]
        out = bytearray()
        for slot in slots:
            k = slot * KEY_SIZE
            key = bytes(keys[k : k + KEY_SIZE])
            out += key
            delete(key)
            seg = loc[slot] >> 32
            tally = gone.get(seg)
            if tally is None:
                gone[seg] = [1, size[slot]]
            else:
                tally[0] += 1
                tally[1] += size[slot]
            if errors:
                errors.pop(slot, None)
            state[slot] = _FREE
            free(slot)
        live = self.seg_live
        for seg, (count, nbytes) in gone.items():
            left = live[seg] - count
            if left:
                live[seg] = left
                self.seg_bytes[seg] -= nbytes
            else:
                del live[seg]
                del self.seg_bytes[seg]
                self.emptied = True
        return bytes(out)

    def recycle(self, slot: int) -> None:
        """A zombie slot left its list: it can be reused."""
        self.state[slot] = _FREE
        self.free.append(slot)

    def key(self, slot: int) -> bytes:
        k = slot * KEY_SIZE
        return bytes(self.keys[k : k + KEY_SIZE])

    # ------------------------------------------------------------------ hash table

    def find(self, key: bytes) -> int:
        """The slot holding ``key``, or -1."""
        table = self.table
        mask = self.mask
        keys = self.keys
        i = zlib.crc32(key) & mask
        while True:
            v = table[i]
            if not v:
                return -1
            k = (v - 1) * KEY_SIZE
            if keys[k : k + KEY_SIZE] == key:
                return v - 1
            i = (i + 1) & mask

    def _insert(self, key: bytes, slot: int) -> None:
        self.count += 1
        if self.count * 2 > len(self.table):
            self._grow()
        table = self.table
        mask = self.mask
        i = zlib.crc32(key) & mask
        while table[i]:
            i = (i + 1) & mask
        table[i] = slot + 1

    def _delete(self, key: bytes) -> None:
        table = self.table
        mask = self.mask
        keys = self.keys
        crc32 = zlib.crc32
        i = crc32(key) & mask
        while True:
            v = table[i]
            if not v:
                return
            k = (v - 1) * KEY_SIZE
            if keys[k : k + KEY_SIZE] == key:
                break
            i = (i + 1) & mask
        self.count -= 1
        table[i] = 0
        j = i
        while True:  # backward-shift deletion: no tombstones, lookups stay short
            j = (j + 1) & mask
            v = table[j]
            if not v:
                return
            k = (v - 1) * KEY_SIZE
            home = crc32(keys[k : k + KEY_SIZE]) & mask
            if (i <= j and i < home <= j) or (i > j and (home > i or home <= j)):
                continue
            table[i] = v
            table[j] = 0
            i = j

    def shrink(self) -> None:
        """Give back a hash table far larger than needed (after recovery)."""
        size = len(self.table)
        while size > _MIN_TABLE and self.count * 8 < size:
            size //= 2
        if size != len(self.table):
            self._rebuild(size)

    def grow(self) -> None:
        """Double the hash table (it is more than half full)."""
        self._grow()

    def _grow(self) -> None:
        size = max(_MIN_TABLE, len(self.table) * 2)
        while self.count * 2 > size:
            size *= 2
        self._rebuild(size)

    def _rebuild(self, size: int) -> None:
        old = self.table
        table: array[int] = array("I", bytes(4 * size))
        mask = size - 1
        keys = self.keys
        crc32 = zlib.crc32
        for v in old:
            if v:
                k = (v - 1) * KEY_SIZE
                i = crc32(keys[k : k + KEY_SIZE]) & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = v
        self.table = table
        self.mask = mask

    # ------------------------------------------------------------------ memory

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (not counting Python object overhead)."""
        arrays = (self.loc, self.size, self.topic, self.prio, self.attempts, self.max_attempts)
        total = len(self.keys) + len(self.state) + self.table.itemsize * len(self.table)
        total += sum(a.itemsize * len(a) for a in arrays) + 4 * len(self.free)
        for t in self.topics:
            total += sum(4 * len(rl.items) for rl in t.lists.values())
        return total
