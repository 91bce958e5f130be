"""Agent state shared through Redis: ``ctx.state`` is the same for every worker process.

Handed out by the ``redis://`` backend (:meth:`RedisBackend.state_manager`), so every
runtime on a ``redis://`` queue (``worker`` processes, pipelines, embedding applications)
shares it. It works on the queue's connection, under the queue's key prefix ``P``::

    P:state:a:AGENT      STRING  the agent's state (a JSON object)
    P:state:h:AGENT      LIST    its recent states, newest last: {"t": time, "s": state}
                                 (at most ``history_size``)
    P:state:lock:AGENT   STRING  held while one process updates the state (redis-py's
                                 lock, expiring after ``lock_timeout`` so a dead holder
                                 cannot block the others for ever)

Updates (``update``, ``transaction``, ``register_agent_state``) are read-modify-write under
that lock, so concurrent updates from any number of processes are never lost. Reads need
no lock. A transaction longer than ``lock_timeout`` may lose the lock: keep them short.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from ... import _json
from ..._args import check_count
from ...clock import Clock
from ...errors import UnknownAgentStateError
from ...state import (
    SNAPSHOT_VERSION,
    StateChange,
    StateManager,
    Updater,
    _atomic_write,
    apply_updates,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisStateManager"]


class RedisStateManager(StateManager):
    """A :class:`StateManager` keeping every agent's state in Redis (see the module docs)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "swarm",
        history_size: int = 100,
        lock_timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(history_size=history_size, clock=clock)
        self.lock_timeout = lock_timeout
        self._redis = client
        self._base = f"{prefix}:state"
        self._local: dict[str, anyio.Lock] = {}
        self._known: set[str] = set()

    def _client(self) -> tuple[aioredis.Redis, str]:
        return self._redis, self._base

    @asynccontextmanager
    async def _locked(self, agent_id: str) -> AsyncIterator[tuple[aioredis.Redis, str]]:
        client, base = self._client()
        self._known.add(agent_id)
        local = self._local.setdefault(agent_id, anyio.Lock())
        async with local:
            lock = client.lock(f"{base}:lock:{agent_id}", timeout=self.lock_timeout, sleep=0.01)
            await lock.acquire()
            try:
                yield client, base
            finally:
                with anyio.CancelScope(shield=True):
                    await lock.release()

    async def _read(self, client: aioredis.Redis, base: str, agent_id: str) -> dict[str, Any]:
        raw = await client.get(f"{base}:a:{agent_id}")
        if raw is None:
            return {}
        state = orjson.loads(raw)
        return state if isinstance(state, dict) else {}

    async def _write(
        self, client: aioredis.Redis, base: str, agent_id: str, state: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = _json.dumps(dict(state), what=f"state of {agent_id!r}")
        entry = orjson.dumps({"t": self._clock.time(), "s": orjson.Fragment(body)})
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(f"{base}:a:{agent_id}", body)
            if self.history_size:
                pipe.rpush(f"{base}:h:{agent_id}", entry)
                pipe.ltrim(f"{base}:h:{agent_id}", -self.history_size, -1)
            await pipe.execute()
        copied = orjson.loads(body)
        assert isinstance(copied, dict)
        return copied

    # ------------------------------------------------------------------ the API

    async def register_agent_state(
        self, agent_id: str, initial_state: Mapping[str, Any] | None = None
    ) -> None:
        async with self._locked(agent_id) as (client, base):
            exists = await client.exists(f"{base}:a:{agent_id}")
            state = await self._read(client, base, agent_id)
            for key, value in dict(initial_state or {}).items():
                state.setdefault(key, value)
            if not exists or initial_state:
                await self._write(client, base, agent_id, state)

    async def _require(self, client: aioredis.Redis, base: str, agent_id: str) -> None:
        """Refuse an agent with no state in Redis (see :meth:`StateManager.update_state`)."""
        if not await client.exists(f"{base}:a:{agent_id}"):
            skip = len(base) + 3
            known = [key.decode()[skip:] async for key in client.scan_iter(f"{base}:a:*")]
            raise UnknownAgentStateError(agent_id, known)

    async def update_state(
        self, agent_id: str, updates: Updater, *, create: bool = False
    ) -> dict[str, Any]:
        async with self._locked(agent_id) as (client, base):
            if not create:
                await self._require(client, base, agent_id)
            current = await self._read(client, base, agent_id)
            new_state = dict(await apply_updates(current, updates))
            return await self._write(client, base, agent_id, new_state)

    async def get_state(self, agent_id: str) -> dict[str, Any]:
        client, base = self._client()
        return await self._read(client, base, agent_id)

    async def get_state_history(self, agent_id: str, limit: int | None = None) -> list[StateChange]:
        check_count("limit", limit, minimum=0, none=True)
        client, base = self._client()
        if limit is not None and limit <= 0:
            return []
        start = -limit if limit is not None else 0
        raw = await client.lrange(f"{base}:h:{agent_id}", start, -1)
        out = []
        for item in raw:
            entry = orjson.loads(item)
            out.append(StateChange(float(entry["t"]), dict(entry["s"])))
        return out

    @asynccontextmanager
    async def transaction(
        self, agent_id: str, *, create: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        async with self._locked(agent_id) as (client, base):
            if not create:
                await self._require(client, base, agent_id)
            working = await self._read(client, base, agent_id)
            yield working
            await self._write(client, base, agent_id, working)

    def agents(self) -> list[str]:
        """The agents whose state this process has used, sorted."""
        return sorted(self._known)

    async def _all(self) -> dict[str, dict[str, Any]]:
        client, base = self._client()
        skip = len(base) + 3
        names = sorted([key.decode()[skip:] async for key in client.scan_iter(f"{base}:a:*")])
        return {name: await self._read(client, base, name) for name in names}

    async def snapshot(self, path: str | os.PathLike[str]) -> Path:
        """Write every agent's state in Redis (all processes') to ``path`` atomically."""
        data = {
            "version": SNAPSHOT_VERSION,
            "taken_at": self._clock.time(),
            "agents": await self._all(),
        }
        body = _json.dumps(data, what="state snapshot")
        target = Path(path)
        await anyio.to_thread.run_sync(_atomic_write, target, body)
        return target

    async def restore(self, path: str | os.PathLike[str]) -> int:
        """Load a snapshot into Redis (each agent's state is replaced)."""
        loaded = StateManager(history_size=0)
        count = await loaded.restore(path)
        for name in loaded.agents():
            state = await loaded.get_state(name)
            async with self._locked(name) as (client, base):
                await self._write(client, base, name, state)
        return count
