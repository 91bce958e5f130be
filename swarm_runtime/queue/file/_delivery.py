"""Handing messages out: taking ready ones, prefetching, reading records back, the reaper.

A subscribe takes ready slots (highest priority first), records their delivery in a LEASE
record and reads their records back in one trip to the I/O thread; when it asks for fewer
than ``prefetch`` messages, the same trip leases and reads the next ones too and parks them
for the following subscribes. Expired leases and due delayed messages are released here.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from functools import partial

import anyio

from ..._logging import get_logger
from ...message import Message
from . import _codec
from ._codec import decode_msgs, make_message
from ._core import FileQueueCore, Lease, wake
from ._format import KEY_SIZE, LEASE_ITEM, REQUEUE_HEAD, RecordType, State, frame
from ._index import TopicIndex
from ._journal import Job

__all__ = ["DeliveryMixin"]

log = get_logger("swarm_runtime.queue.file")

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_ZOMBIE = State.ZOMBIE
_PARKED = State.PARKED


class DeliveryMixin(FileQueueCore):
    """Taking, prefetching, reading back and reaping (see the module docstring)."""

    def _take(self, topic: TopicIndex, count: int, *, park: bool = False) -> list[int]:
        """Pop up to ``count`` ready slots, highest priority first, and mark them leased.

        With ``park`` they are marked parked instead (prefetched for the next subscribes),
        stopping before any message whose next delivery would be its last: a crash must
        never dead-letter a message for a delivery it did not get.
        """
        if not topic.n_ready:
            return []
        index = self._index
        state = index.state
        attempts = index.attempts
        mark = _PARKED if park else _LEASED
        default_limit = self.options.max_attempts
        out: list[int] = []
        stop = False
        for priority in topic.order:
            rl = topic.lists[priority]
            items = rl.items
            head = rl.head
            end = len(items)
            while head < end:
                slot = items[head]
                st = state[slot]
                if st == _READY:
                    if park and attempts[slot] + 1 >= (index.max_attempts[slot] or default_limit):
                        stop = True
                        break
                    state[slot] = mark
                    attempts[slot] += 1
                    out.append(slot)
                    head += 1
                    if len(out) == count:
                        break
                else:
                    head += 1
                    if st == _ZOMBIE:
                        index.recycle(slot)
            rl.head = head
            rl.compact()
            if stop or len(out) == count:
                break
        if len(topic.order) > 1:
            for priority in [p for p in topic.order if not len(topic.lists[p])]:
                del topic.lists[priority]
                topic.order.remove(priority)
        topic.n_ready -= len(out)
        if park:
            topic.n_parked += len(out)
        else:
            topic.n_leased += len(out)
        return out

    def _parked_first(self, topic: TopicIndex) -> bool:
        """Prefetched messages go first unless a ready one has a higher priority."""
        if not topic.n_ready:
            return True
        head_priority = self._index.prio[topic.parked[0][0]]
        return not (topic.order and topic.order[0] > head_priority)

    def _hand_out_parked(
        self, topic: TopicIndex, count: int, lease: float, now: float
    ) -> list[Message]:
        """Deliver prefetched messages: their delivery is on disk already, no trip needed."""
        parked = topic.parked
        state = self._index.state
        taken: list[int] = []
        records: list[bytes | None] = []
        while parked and len(taken) < count:
            slot, record = parked.popleft()
            state[slot] = _LEASED
            taken.append(slot)
            records.append(record)
        topic.n_parked -= len(taken)
        topic.n_leased += len(taken)
        return self._lease_out(topic, taken, records, now + lease)

    async def _deliver(
        self, topic: TopicIndex, slots: list[int], lease: float, now: float
    ) -> list[Message]:
        """Record the deliveries and read the records back: one trip to the I/O thread,
        shared with whatever else is being written."""
        wanted = self._lease_record(slots)
        log_ = self._log
        try:
            records = await self._journal.io(lambda: log_.read(wanted))
        except BaseException:
            self._give_back(topic, slots)
            raise
        return self._lease_out(topic, slots, records, now + lease)

    def _lease_out(
        self, topic: TopicIndex, slots: list[int], records: Sequence[bytes | None], deadline: float
    ) -> list[Message]:
        """The messages of leased ``slots`` read back as ``records``, their leases running
        until ``deadline`` (unreadable ones are dropped, loudly)."""
        leases = self._leases
        out: list[Message] = []
        for slot, message in zip(slots, self._decode_many(slots, records), strict=True):
            if message is not None:
                leases[message.id] = Lease(slot, topic, deadline)
                out.append(message)
        if out:
            self._track_leases(deadline, tuple(m.id for m in out))
        return out

    def _lease_record(self, slots: list[int]) -> list[tuple[int, int]]:
        """Append the LEASE record of ``slots``; returns where their records are."""
        index = self._index
        keys = index.keys
        attempts = index.attempts
        loc = index.loc
        size = index.size
        body = bytearray()
        pack = LEASE_ITEM.pack
        wanted = []
        for slot in slots:
            k = slot * KEY_SIZE
            body += pack(keys[k : k + KEY_SIZE], attempts[slot])
            wanted.append((loc[slot], size[slot]))
        self._append_lazy(frame(RecordType.LEASE, body))
        return wanted

    def _refill(self, topic: TopicIndex, batch_size: int) -> None:
        """Start reading the next messages while the caller works on these (prefetch).

        Once the prefetched list is down to half of ``max(prefetch, batch_size)``, the
        next ready messages are leased (their delivery recorded) and read in the I/O
        thread without anyone waiting; they land in ``topic.parked``.
        """
        if not self.prefetch or topic.prefetching or not topic.n_ready or self.read_only:
            return
        target = max(self.prefetch, batch_size)
        if len(topic.parked) * 2 > target:
            return
        slots = self._take(topic, target - len(topic.parked), park=True)
        if not slots:
            return
        wanted = self._lease_record(slots)
        topic.prefetching = len(slots)
        topic.landed = anyio.Event()
        log_ = self._log
        self._journal.start_job(
            lambda: log_.read(wanted), partial(self._landed, topic, slots, wanted)
        )

    async def _prefetch_landed(self, topic: TopicIndex) -> None:
        """Wait until no prefetch read for ``topic`` is under way (before listing it)."""
        while topic.prefetching:
            await topic.landed.wait()

    def _landed(
        self,
        topic: TopicIndex,
        slots: list[int],
        wanted: list[tuple[int, int]],
        job: Job[list[bytes]],
    ) -> None:
        """A prefetch read is back (on the event loop): park what is still parked."""
        index = self._index
        state = index.state
        loc = index.loc
        # A slot settled meanwhile (acked by id, purged) may even hold another message
        # now: only slots still parked with the same record are ours.
        mine = [
            (slot, i)
            for i, slot in enumerate(slots)
            if state[slot] == _PARKED and loc[slot] == wanted[i][0]
        ]
        topic.prefetching = 0
        landed, topic.landed = topic.landed, None
        if job.error is not None or job.result is None:
            log.error(
                "queue prefetch read failed; messages go back to ready",
                directory=str(self.directory),
                error=repr(job.error),
            )
            self._give_back(topic, [slot for slot, _ in mine])
        else:
            records = job.result
            topic.parked.extend((slot, records[i]) for slot, i in mine)
            wake(topic, len(mine))
        if landed is not None:
            landed.set()

    def _decode(self, slot: int, record: bytes | None) -> Message | None:
        """Build the delivered message; a record that fails its checks is dropped, loudly."""
        return self._decode_many([slot], [record])[0]

    def _decode_many(
        self, slots: list[int], records: Sequence[bytes | None]
    ) -> list[Message | None]:
        """:meth:`_decode` for many records at once (their JSON is parsed in one call)."""
        index = self._index
        keys = index.keys
        attempts = index.attempts
        errors = index.errors
        out: list[Message | None] = []
        for slot, item in zip(slots, decode_msgs(records), strict=True):
            if isinstance(item, str):
                self._drop_corrupt(slot, item)
                out.append(None)
                continue
            key, priority, max_attempts, topic, meta, payload, flags = item
            k = slot * KEY_SIZE
            if keys[k : k + KEY_SIZE] != key:
                self._drop_corrupt(slot, "record belongs to another message")
                out.append(None)
                continue
            last_error = errors.get(slot) if errors else None
            if last_error is None and flags & _codec.HAS_ERROR:
                last_error = meta[7]
            out.append(
                make_message(
                    meta[0],
                    topic,
                    payload,
                    meta,
                    attempts[slot],
                    max_attempts,
                    priority,
                    last_error,
                )
            )
        return out

    def _drop_corrupt(self, slot: int, why: str) -> None:
        index = self._index
        loc = index.loc[slot]
        self.corrupt_reads += 1
        log.error(
            "queue record unreadable; message dropped",
            directory=str(self.directory),
            segment=loc >> 32,
            offset=loc & 0xFFFFFFFF,
            reason=why,
        )
        topic = index.topics[index.topic[slot]]
        st = index.state[slot]
        if st == _LEASED:
            topic.n_leased -= 1
        elif st == _DEAD:
            topic.dead.pop(slot, None)
        elif st == _PARKED:
            self._unpark(topic, slot)
        key = index.key(slot)
        index.settle(slot, listed=st in (_READY, _DELAYED))
        if st == _READY:
            topic.n_ready -= 1
        elif st == _DELAYED:
            topic.n_delayed -= 1
        if not self.read_only:
            self._acks += key

    def _give_back(self, topic: TopicIndex, slots: list[int]) -> None:
        """Undo a take whose delivery was cancelled: the messages go back to the front."""
        index = self._index
        state = index.state
        attempts = index.attempts
        for slot in reversed(slots):
            st = state[slot]
            if st == _LEASED:
                topic.n_leased -= 1
            elif st == _PARKED:
                topic.n_parked -= 1
            else:
                continue
            state[slot] = _READY
            attempts[slot] -= 1
            self._push_front(topic, slot)
            topic.n_ready += 1
            self._append_lazy(
                frame(
                    RecordType.REQUEUE, REQUEUE_HEAD.pack(index.key(slot), attempts[slot], 0.0, 0)
                )
            )
        wake(topic, len(slots))

    def _return_parked(self) -> None:
        """Prefetched messages go back to the front of their lines, their attempt uncounted
        (with a record saying so): before a close, nothing was handed out."""
        index = self._index
        for topic in index.topics:
            while topic.parked:
                slot, _ = topic.parked.pop()
                topic.n_parked -= 1
                index.state[slot] = _READY
                index.attempts[slot] -= 1
                self._push_front(topic, slot)
                topic.n_ready += 1
                self._append_lazy(
                    frame(
                        RecordType.REQUEUE,
                        REQUEUE_HEAD.pack(index.key(slot), index.attempts[slot], 0.0, 0),
                    )
                )

    def _next_due(self) -> float | None:
        due = self._index.delayed.next_due()
        if self._lease_heap:
            first = self._lease_heap[0][0]
            due = first if due is None else min(due, first)
        return due

    def _promote(self, now: float) -> None:
        """Due delayed messages become ready; expired leases ready again (or dead)."""
        index = self._index
        delayed = index.delayed
        if delayed.heap and delayed.heap[0] <= now:
            state = index.state
            topics = index.topics
            woken: dict[TopicIndex, int] = {}
            for _, slot in delayed.pop_due(now):
                st = state[slot]
                if st == _DELAYED:
                    topic = topics[index.topic[slot]]
                    state[slot] = _READY
                    topic.ready_list(index.prio[slot]).items.append(slot)
                    topic.n_delayed -= 1
                    topic.n_ready += 1
                    woken[topic] = woken.get(topic, 0) + 1
                elif st == _ZOMBIE:
                    index.recycle(slot)
            for topic, count in woken.items():
                wake(topic, count)
        heap = self._lease_heap
        leases = self._leases
        while heap and heap[0][0] <= now:
            deadline, _, ids = heapq.heappop(heap)
            self._lease_refs -= len(ids)
            for message_id in ids:
                lease = leases.get(message_id)
                if lease is None or lease.deadline != deadline:
                    continue  # settled, extended, or delivered again since
                del leases[message_id]
                self._expire(lease)

    def _track_leases(self, deadline: float, ids: tuple[str, ...]) -> None:
        """Remember when these leases run out (one heap entry per delivered batch)."""
        heapq.heappush(self._lease_heap, (deadline, next(self._lease_seq), ids))
        self._lease_refs += len(ids)
        if self._lease_refs > 2 * len(self._leases) + 4096:
            # Settled leases stay in the heap until their deadline; with a long lease and
            # a fast consumer that adds up: keep only the live ones.
            self._lease_heap = [
                (lease.deadline, next(self._lease_seq), (message_id,))
                for message_id, lease in self._leases.items()
            ]
            heapq.heapify(self._lease_heap)
            self._lease_refs = len(self._lease_heap)

    def _expire(self, lease: Lease) -> None:
        """A lease ran out: the message is ready again, or dead if that was its last try."""
        index = self._index
        slot = lease.slot
        topic = lease.topic
        topic.n_leased -= 1
        limit = index.max_attempts[slot] or self.options.max_attempts
        if index.attempts[slot] >= limit:
            self._kill(
                topic,
                slot,
                f"lease expired without ack on attempt {index.attempts[slot]} of {limit}",
            )
        else:
            self._make_ready(topic, slot)
            wake(topic, 1)
