"""The in-memory backend: every queue semantic, nothing on disk.

A product, not a stub: tests, embedded runtimes that need no durability, and the
reference the conformance suite holds the other backends to.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import anyio

from ..message import Message
from ._publishing import PublishBatch
from .base import MessageQueue, NackOutcome, QueueStats

__all__ = ["MemoryQueue"]

_READY, _DELAYED, _LEASED = 0, 1, 2


class _Entry:
    __slots__ = ("deadline", "message", "seq", "state", "version")

    def __init__(self, message: Message, seq: int) -> None:
        self.message = message
        self.seq = seq
        self.state = _READY
        self.version = 0
        self.deadline = 0.0


class _Topic:
    __slots__ = (
        "dead",
        "delayed",
        "leased",
        "leases",
        "n_delayed",
        "n_ready",
        "ready",
        "timer",
        "timer_due",
        "waiters",
    )

    def __init__(self) -> None:
        self.ready: list[tuple[int, int, int, str]] = []  # (-priority, seq, version, id)
        self.delayed: list[tuple[float, int, int, str]] = []  # (due, seq, version, id)
        self.leases: list[tuple[float, int, int, str]] = []  # (deadline, seq, version, id)
        self.dead: OrderedDict[str, Message] = OrderedDict()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0
        self.n_ready = 0
        self.n_delayed = 0
        self.leased = 0


class MemoryQueue(MessageQueue):
    """All queue semantics in process memory; contents vanish with the process."""

    scheme = "memory"
    supports_interrupt = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._entries: dict[str, _Entry] = {}
        self._by_topic: dict[str, _Topic] = {}
        self._seq = itertools.count()
        # one counter for all entries: a heap record of an earlier entry with the same id
        # (acked then re-published, or replayed) can never match a newer one
        self._versions = itertools.count(1)
        self._dedup: dict[str, tuple[str, float]] = {}
        self._dedup_order: deque[tuple[float, str]] = deque()

    # ------------------------------------------------------------------ helpers

    def _topic(self, name: str) -> _Topic:
        topic = self._by_topic.get(name)
        if topic is None:
            topic = self._by_topic[name] = _Topic()
        return topic

    def _max_attempts(self, message: Message) -> int:
        return message.max_attempts or self.options.max_attempts

    def _make_ready(self, topic: _Topic, entry: _Entry, message_id: str) -> None:
        entry.state = _READY
        entry.version = next(self._versions)
        topic.n_ready += 1
        heapq.heappush(topic.ready, (-entry.message.priority, entry.seq, entry.version, message_id))
        self._wake(topic, 1)

    def _make_delayed(self, topic: _Topic, entry: _Entry, message_id: str, due: float) -> None:
        entry.state = _DELAYED
        entry.version = next(self._versions)
        entry.deadline = due
        topic.n_delayed += 1
        heapq.heappush(topic.delayed, (due, entry.seq, entry.version, message_id))
        if topic.waiters:  # someone is already waiting: wake them when this falls due
            self._arm_timer(topic, due, self.clock.time())

    def _kill(self, topic: _Topic, message_id: str, error: str) -> None:
        entry = self._entries.pop(message_id)
        entry.message.last_error = error
        topic.dead[message_id] = entry.message

    @staticmethod
    def _wake(topic: _Topic, count: int) -> None:
        waiters = topic.waiters
        while count > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _arm_timer(self, topic: _Topic, due: float, now: float) -> None:
        """Wake the topic's waiters when its next delayed message or lease falls due."""
        if topic.timer is not None:
            if topic.timer_due <= due:
                return
            topic.timer.cancel()
        topic.timer_due = due
        topic.timer = asyncio.get_running_loop().call_later(
            max(0.0, due - now) + 0.001, self._on_timer, topic
        )

    def _on_interrupt(self, topic_name: str) -> None:
        topic = self._by_topic.get(topic_name)
        if topic is not None:
            self._wake(topic, len(topic.waiters))

    def _on_timer(self, topic: _Topic) -> None:
        topic.timer = None
        self._wake(topic, len(topic.waiters))

    def _promote(self, topic: _Topic, now: float) -> None:
        """Make due delayed messages ready and expired leases ready (or dead)."""
        entries = self._entries
        delayed = topic.delayed
        while delayed and delayed[0][0] <= now:
            _, _, version, message_id = heapq.heappop(delayed)
            entry = entries.get(message_id)
            if entry is not None and entry.version == version and entry.state == _DELAYED:
                topic.n_delayed -= 1
                self._make_ready(topic, entry, message_id)
        leases = topic.leases
        while leases and leases[0][0] <= now:
            _, _, version, message_id = heapq.heappop(leases)
            entry = entries.get(message_id)
            if entry is None or entry.version != version or entry.state != _LEASED:
                continue
            topic.leased -= 1
            message = entry.message
            if message.attempts >= self._max_attempts(message):
                self._kill(
                    topic,
                    message_id,
                    f"lease expired without ack on attempt {message.attempts} of "
                    f"{self._max_attempts(message)}",
                )
            else:
                self._make_ready(topic, entry, message_id)

    def _next_due(self, topic: _Topic) -> float | None:
        candidates = []
        if topic.delayed:
            candidates.append(topic.delayed[0][0])
        if topic.leases:
            candidates.append(topic.leases[0][0])
        return min(candidates) if candidates else None

    def _take(self, topic: _Topic, count: int, lease: float, now: float) -> list[Message]:
        out: list[Message] = []
        ready = topic.ready
        entries = self._entries
        deadline = now + lease
        while ready and len(out) < count:
            _, seq, version, message_id = heapq.heappop(ready)
            entry = entries.get(message_id)
            if entry is None or entry.version != version or entry.state != _READY:
                continue
            topic.n_ready -= 1
            topic.leased += 1
            entry.state = _LEASED
            entry.version = next(self._versions)
            entry.deadline = deadline
            message = entry.message
            message.__dict__["attempts"] += 1
            heapq.heappush(topic.leases, (deadline, seq, entry.version, message_id))
            if topic.waiters and (topic.timer is None or topic.timer_due > deadline):
                self._arm_timer(topic, deadline, now)  # others wait: redeliver if it expires
            out.append(message.copy_for_delivery())
        return out

    # ------------------------------------------------------------------ backend hooks

    async def _publish(self, batch: PublishBatch) -> list[str]:
        if len(batch) == 1 and batch.dedup_keys is None:  # a single publish
            return [self._store(batch.message(0), batch.delay, None, self.clock.time())]
        return self._store_all((batch,))

    async def _publish_all(self, batches: list[PublishBatch]) -> list[str]:
        return self._store_all(batches)

    def _store_all(self, batches: Sequence[PublishBatch]) -> list[str]:
        """Store every batch, without suspending: nothing else runs in between, so a
        ``publish_all`` is stored whole (its checks were all made before)."""
        now = self.clock.time()
        store = self._store
        out: list[str] = []
        for batch in batches:
            keys = batch.dedup_keys
            message = batch.message
            delay = batch.delay
            out += [
                store(message(i), delay, None if keys is None else keys[i], now)
                for i in range(len(batch))
            ]
        return out

    def _store(self, message: Message, delay: float, dedup_key: str | None, now: float) -> str:
        if dedup_key is not None:
            self._expire_dedup(now)
            seen = self._dedup.get(dedup_key)
            if seen is not None:
                return seen[0]
        message_id = message.id
        if message_id in self._entries:
            return message_id
        if dedup_key is not None and self.options.dedup_window > 0:
            expires = now + self.options.dedup_window
            self._dedup[dedup_key] = (message_id, expires)
            self._dedup_order.append((expires, dedup_key))
        entry = _Entry(message, next(self._seq))
        self._entries[message_id] = entry
        topic = self._topic(message.topic)
        if delay > 0:
            self._make_delayed(topic, entry, message_id, now + delay)
        else:
            self._make_ready(topic, entry, message_id)
        return message_id

    def _expire_dedup(self, now: float) -> None:
        order = self._dedup_order
        while order and order[0][0] <= now:
            _, key = order.popleft()
            seen = self._dedup.get(key)
            if seen is not None and seen[1] <= now:
                del self._dedup[key]

    async def _get(
        self, topic_name: str, batch_size: int, lease: float, timeout: float | None
    ) -> list[Message]:
        topic = self._topic(topic_name)
        clock = self.clock
        give_up = None if timeout is None else anyio.current_time() + timeout
        loop = asyncio.get_running_loop()
        generation = self._interrupt_generation(topic_name)
        while True:
            self._check_open()
            now = clock.time()
            self._promote(topic, now)
            batch = self._take(topic, batch_size, lease, now)
            if batch:
                return batch
            if give_up is not None and anyio.current_time() >= give_up:
                return batch
            if self._interrupt_generation(topic_name) != generation:
                return batch
            due = self._next_due(topic)
            if due is not None:
                self._arm_timer(topic, due, now)
            waiter: asyncio.Future[None] = loop.create_future()
            topic.waiters.append(waiter)
            try:
                if give_up is None:
                    await waiter
                else:
                    with anyio.move_on_after(give_up - anyio.current_time()):
                        await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(topic, 1)  # pass the wake-up on; we are not taking it
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                if waiter.cancelled():
                    try:
                        topic.waiters.remove(waiter)
                    except ValueError:
                        pass

    def _leased_entry(self, message_id: str) -> _Entry | None:
        entry = self._entries.get(message_id)
        if entry is None or entry.state != _LEASED:
            return None
        return entry

    async def _ack(self, message_id: str) -> bool:
        entry = self._entries.pop(message_id, None)
        if entry is None:
            return False
        topic = self._topic(entry.message.topic)
        if entry.state == _LEASED:
            topic.leased -= 1
        elif entry.state == _READY:
            topic.n_ready -= 1
        else:
            topic.n_delayed -= 1
        return True

    async def _nack(self, message_id: str, delay: float, error: str | None) -> NackOutcome:
        entry = self._leased_entry(message_id)
        if entry is None:
            return "unknown"
        message = entry.message
        topic = self._topic(message.topic)
        topic.leased -= 1
        if error is not None:
            message.last_error = error
        if message.attempts >= self._max_attempts(message):
            self._kill(topic, message_id, error or message.last_error or "nacked")
            return "dead_lettered"
        if delay > 0:
            self._make_delayed(topic, entry, message_id, self.clock.time() + delay)
        else:
            self._make_ready(topic, entry, message_id)
        return "requeued"

    async def _nack_dead(self, message_id: str, error: str | None) -> NackOutcome:
        entry = self._leased_entry(message_id)
        if entry is None:
            return "unknown"
        topic = self._topic(entry.message.topic)
        topic.leased -= 1
        self._kill(topic, message_id, error or entry.message.last_error or "dead-lettered")
        return "dead_lettered"

    async def _release(self, message_id: str) -> bool:
        entry = self._leased_entry(message_id)
        if entry is None:
            return False
        topic = self._topic(entry.message.topic)
        topic.leased -= 1
        entry.message.attempts = max(0, entry.message.attempts - 1)
        self._make_ready(topic, entry, message_id)
        return True

    async def _extend(self, message_id: str, lease: float) -> bool:
        entry = self._leased_entry(message_id)
        if entry is None:
            return False
        if entry.deadline <= self.clock.time():
            return False  # already expired: the reaper may hand it to someone else
        topic = self._topic(entry.message.topic)
        entry.version = next(self._versions)
        entry.deadline = self.clock.time() + lease
        heapq.heappush(topic.leases, (entry.deadline, entry.seq, entry.version, message_id))
        return True

    async def _stats(self, topic_name: str) -> QueueStats:
        topic = self._topic(topic_name)
        self._promote(topic, self.clock.time())
        return QueueStats(
            topic=topic_name,
            ready=topic.n_ready,
            delayed=topic.n_delayed,
            leased=topic.leased,
            dead=len(topic.dead),
        )

    async def _topics(self) -> list[str]:
        return [
            name
            for name, t in self._by_topic.items()
            if t.n_ready or t.n_delayed or t.leased or t.dead
        ]

    async def _peek(self, topic_name: str, limit: int) -> list[Message]:
        topic = self._topic(topic_name)
        self._promote(topic, self.clock.time())
        out: list[Message] = []
        for _, _, version, message_id in sorted(topic.ready):
            entry = self._entries.get(message_id)
            if entry is not None and entry.version == version and entry.state == _READY:
                out.append(entry.message.model_copy())
                if len(out) >= limit:
                    break
        return out

    async def _dead_letters(self, topic_name: str, limit: int | None) -> list[Message]:
        dead = self._topic(topic_name).dead.values()
        items = list(dead) if limit is None else list(itertools.islice(dead, limit))
        return [m.model_copy() for m in items]

    async def _replay(self, topic_name: str, ids: list[str] | None) -> int:
        topic = self._topic(topic_name)
        chosen = list(topic.dead) if ids is None else [i for i in ids if i in topic.dead]
        for message_id in chosen:
            message = topic.dead.pop(message_id)
            message.attempts = 0
            entry = _Entry(message, next(self._seq))
            self._entries[message_id] = entry
            self._make_ready(topic, entry, message_id)
        return len(chosen)

    async def _purge_dead(self, topic_name: str) -> int:
        topic = self._topic(topic_name)
        count = len(topic.dead)
        topic.dead.clear()
        return count

    async def _purge(self, topic_name: str) -> int:
        topic = self._topic(topic_name)
        doomed = [
            message_id
            for message_id, entry in self._entries.items()
            if entry.message.topic == topic_name and entry.state != _LEASED
        ]
        for message_id in doomed:
            del self._entries[message_id]
        topic.ready.clear()
        topic.delayed.clear()
        topic.n_ready = topic.n_delayed = 0
        return len(doomed)

    async def _close(self) -> None:
        for topic in self._by_topic.values():
            if topic.timer is not None:
                topic.timer.cancel()
                topic.timer = None
            self._wake(topic, len(topic.waiters))
