"""Handoff records shared through Redis: a handoff made in one worker process is verified,
forwarded and settled by whichever process handles its target.

Handed out by the ``redis://`` backend (:meth:`RedisBackend.handoff_protocol`) to every
runtime on a ``redis://`` queue; it works on the queue's connection under its prefix::

    P:handoff:r:ID     STRING  the record (a :class:`~swarm_runtime.handoff.Handoff` as JSON);
                               settled records expire after ``keep_settled`` seconds
    P:handoff:ids      ZSET    id -> created_at (listing, oldest first)

Each change is an optimistic transaction (WATCH the record, MULTI/EXEC, again on a
conflict), so settling stays exactly-once across processes. ``wait`` polls the record
(every ``poll_interval`` seconds) unless it settles in this process.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
from redis.exceptions import WatchError

from ...clock import Clock
from ...errors import HandoffError, RequestTimeoutError
from ...handoff import Handoff, HandoffProtocol, HandoffStatus

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisHandoffProtocol"]


class RedisHandoffProtocol(HandoffProtocol):
    """A :class:`HandoffProtocol` keeping its records in Redis (see the module docs)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "swarm",
        keep_settled: float = 86_400.0,
        poll_interval: float = 0.05,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.keep_settled = keep_settled
        self.poll_interval = poll_interval
        self._redis = client
        self._base = f"{prefix}:handoff"
        self._prefix = f"handoff_{os.urandom(5).hex()}_"

    def _client(self) -> tuple[aioredis.Redis, str]:
        return self._redis, self._base

    async def _load(self, handoff_id: str) -> Handoff | None:
        client, base = self._client()
        raw = await client.get(f"{base}:r:{handoff_id}")
        return None if raw is None else Handoff.model_validate_json(raw)

    async def _modify(
        self, handoff_id: str, change: Callable[[Handoff], bool]
    ) -> tuple[Handoff | None, bool]:
        """Apply ``change`` to the stored record atomically; it returns whether to save."""
        client, base = self._client()
        key = f"{base}:r:{handoff_id}"
        async with client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return None, False
                    record = Handoff.model_validate_json(raw)
                    if not change(record):
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return record, False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    body = record.model_dump_json()
                    if record.done:
                        pipe.set(key, body, px=int(self.keep_settled * 1000))
                    else:
                        pipe.set(key, body)
                    await pipe.execute()
                    return record, True
                except WatchError:
                    continue

    # ------------------------------------------------------------------ seed API

    async def initiate_handoff(
        self,
        source_agent: str,
        target_agent: str,
        task_data: Any = None,
        *,
        reason: str | None = None,
        parent_id: str | None = None,
        workflow_id: str | None = None,
    ) -> str:
        record = self._new_record(
            source_agent, target_agent, task_data, reason, parent_id, workflow_id
        )
        handoff_id = record.id
        if parent_id is not None:

            def adopt(parent: Handoff) -> bool:
                parent.children.append(handoff_id)
                return True

            found, _ = await self._modify(parent_id, adopt)
            if found is None:
                raise HandoffError(f"parent handoff {parent_id!r} is unknown")
        client, base = self._client()
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(f"{base}:r:{handoff_id}", record.model_dump_json())
            pipe.zadd(f"{base}:ids", {handoff_id: record.created_at})
            await pipe.execute()
        self._events[handoff_id] = anyio.Event()
        return handoff_id

    async def complete_handoff(
        self,
        handoff_id: str,
        completion_status: bool,
        *,
        result: Any = None,
        error: str | None = None,
    ) -> bool:
        now = self._clock.time()

        def settle(record: Handoff) -> bool:
            return record.settle(completion_status, result, error, now)

        record, settled = await self._modify(handoff_id, settle)
        if record is None or not settled:
            return False
        event = self._events.pop(handoff_id, None)
        if event is not None:
            event.set()
        if record.parent_id is not None:
            parent = await self._load(record.parent_id)
            if parent is not None and parent.forwarded_to == handoff_id:
                await self.complete_handoff(
                    record.parent_id, completion_status, result=result, error=error
                )
        return True

    # ------------------------------------------------------------------ tracking

    async def verify(self, handoff_id: str, agent: str) -> Handoff:
        now = self._clock.time()
        problem: list[str] = []

        def check(record: Handoff) -> bool:
            refusal = record.refusal(agent)
            if refusal is not None:
                problem.append(refusal)
                return False
            return record.mark_verified(agent, now)

        record, _ = await self._modify(handoff_id, check)
        if record is None:
            raise HandoffError(f"handoff {handoff_id!r} is unknown (expired or never initiated)")
        if problem:
            raise HandoffError(problem[0])
        return record

    async def forward(self, handoff_id: str, child_id: str) -> None:
        def point(record: Handoff) -> bool:
            if record.done:
                return False
            record.forwarded_to = child_id
            return True

        await self._modify(handoff_id, point)

    async def attach_message(self, handoff_id: str, message_id: str) -> None:
        def attach(record: Handoff) -> bool:
            record.message_id = message_id
            return True

        await self._modify(handoff_id, attach)

    async def get(self, handoff_id: str) -> Handoff | None:
        return await self._load(handoff_id)

    async def records(
        self, *, status: HandoffStatus | None = None, workflow_id: str | None = None
    ) -> list[Handoff]:
        client, base = self._client()
        raw_ids: list[Any] = await client.zrange(f"{base}:ids", 0, -1)
        ids = [raw.decode() for raw in raw_ids]
        if not ids:
            return []
        bodies = await client.mget([f"{base}:r:{i}" for i in ids])
        gone = [i for i, body in zip(ids, bodies, strict=True) if body is None]
        if gone:
            await client.zrem(f"{base}:ids", *gone)  # expired settled records
        found = [Handoff.model_validate_json(body) for body in bodies if body is not None]
        return [
            r
            for r in found
            if (status is None or r.status == status)
            and (workflow_id is None or r.workflow_id == workflow_id)
        ]

    async def trace(self, handoff_id: str) -> list[Handoff]:
        chain: list[Handoff] = []
        current: str | None = handoff_id
        while current is not None:
            record = await self._load(current)
            if record is None:
                if not chain:
                    raise HandoffError(f"handoff {handoff_id!r} is unknown")
                break
            chain.append(record)
            current = record.parent_id
        chain.reverse()
        return chain

    async def descendants(self, handoff_id: str) -> list[Handoff]:
        root = await self._load(handoff_id)
        out: list[Handoff] = []
        queue = list(root.children) if root is not None else []
        while queue:
            record = await self._load(queue.pop(0))
            if record is not None:
                out.append(record)
                queue.extend(record.children)
        return out

    async def wait(self, handoff_id: str, timeout: float | None = None) -> Handoff:
        record = await self._load(handoff_id)
        if record is None:
            raise HandoffError(f"handoff {handoff_id!r} is unknown")
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while not record.done:
                event = self._events.get(handoff_id)
                with anyio.move_on_after(self.poll_interval):
                    if event is not None:
                        await event.wait()
                    else:
                        await anyio.sleep_forever()
                record = await self._load(handoff_id) or record
        if not record.done:
            raise RequestTimeoutError(
                f"handoff {handoff_id!r} to {record.target!r} did not settle within {timeout}s"
            )
        return record

    def __len__(self) -> int:
        """Handoffs initiated through this process and not settled yet (the records live in
        Redis: use :meth:`records` for all of them)."""
        return len(self._events)

    def __bool__(self) -> bool:
        return True  # a protocol with no local records is still a protocol
