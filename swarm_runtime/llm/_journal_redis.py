"""``redis://`` step journal: one hash per run (``PREFIX:llm:<run_id>``, field = step).

``HSETNX`` keeps the first record of a step; every process (on any machine) sees the run.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
import redis.exceptions

from .. import _json
from ..errors import BackendUnavailableError
from .journal import Record, RunJournal, StepJournal

__all__ = ["RedisStepJournal"]


class _RedisRunJournal(RunJournal):
    def __init__(
        self, run_id: str, records: dict[int, Record], client: aioredis.Redis, key: str
    ) -> None:
        super().__init__(run_id, records)
        self._client = client
        self._key = key

    async def write(self, record: Record) -> None:
        try:
            await self._client.hsetnx(self._key, str(record["step"]), orjson.dumps(record))
        except redis.exceptions.RedisError as exc:
            raise BackendUnavailableError(f"cannot write the journal {self._key!r}: {exc}") from exc


class RedisStepJournal(StepJournal):
    """Runs journaled in Redis (``?prefix=`` in the URL, default ``swarm``)."""

    durable = True
    shared = True

    def __init__(self, url: str, *, client: aioredis.Redis | None = None) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["swarm"])[0]
        self._owned = client is None
        self._client: Any = client or aioredis.Redis.from_url(
            urlunsplit(parts._replace(query="")), socket_connect_timeout=5
        )

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
        if self._owned:
            await self._client.aclose()
