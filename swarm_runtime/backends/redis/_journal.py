"""``redis://`` LLM step journal: one hash per run (``PREFIX:llm:<run_id>``, field = step).

``HSETNX`` keeps the first record of a step; every process (on any machine) sees the run.
The backend's journal shares the queue's connection pool and key prefix.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from ... import _json
from ...errors import BackendUnavailableError
from ...llm.journal import Record, RunJournal, StepJournal
from ...queue.redis import RedisQueue

__all__ = ["RedisStepJournal"]


class _RedisRunJournal(RunJournal):
    def __init__(
        self, run_id: str, records: dict[int, Record], client: aioredis.Redis, key: str
    ) -> None:
        super().__init__(run_id, records)
        self._client = client
        self._key = key

    async def write(self, *records: Record) -> None:
        try:
            if len(records) == 1:
                record = records[0]
                await self._client.hsetnx(self._key, str(record["step"]), orjson.dumps(record))
                return
            async with self._client.pipeline(transaction=False) as pipe:
                for record in records:
                    pipe.hsetnx(self._key, str(record["step"]), orjson.dumps(record))
                await pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise BackendUnavailableError(f"cannot write the journal {self._key!r}: {exc}") from exc


class RedisStepJournal(StepJournal):
    """Runs journaled in Redis under ``prefix`` (shared by every process)."""

    durable = True
    shared = True

    def __init__(self, client: aioredis.Redis, *, prefix: str, owns_client: bool = False) -> None:
        self._client: Any = client
        self.prefix = prefix
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str) -> RedisStepJournal:
        """A journal with its own connection, for ``redis://HOST:PORT/DB[?prefix=P]``."""
        queue = RedisQueue.from_url(url)  # parses the URL the same way; never opened
        return cls(queue.client, prefix=queue.prefix, owns_client=True)

    def key(self, run_id: str) -> str:
        return f"{self.prefix}:llm:{run_id}"

    async def open(self, run_id: str) -> RunJournal:
        key = self.key(run_id)
        try:
            stored: dict[bytes, bytes] = await self._client.hgetall(key)
        except redis.exceptions.RedisError as exc:
            raise BackendUnavailableError(f"cannot read the journal {key!r}: {exc}") from exc
        records = {int(step): _json.loads(value) for step, value in stored.items()}
        return _RedisRunJournal(run_id, records, self._client, key)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
