"""Workflow runs kept in Redis, beside a ``redis://`` queue: any machine can resume a run.

Handed out by the ``redis://`` backend (:meth:`RedisBackend.run_store`); it uses the
queue's connection and key prefix ``P`` (the queue owns ``P:q:``, runs live
under ``P:wf:``)::

    P:wf:runs            ZSET    run id -> created_at (listing, oldest first)
    P:wf:r:ID:meta       HASH    summary: name, fingerprint, created_at, updated_at, state,
                                 error (absent if none), sessions, tasks; and ``w:WRITER``
                                 -> the last batch number applied from that writer
    P:wf:r:ID:log        LIST    the run's records as JSON, the header first (the same
                                 records as a file run log: session, task, end)
    P:wf:r:ID:done       HASH    task name -> "1" for every task whose result is recorded
    P:wf:r:ID:live       STRING  HOST:PID:WRITER of the process executing the run now,
                                 renewed every 5 s, expiring after 15 s (a process that
                                 died): another ``execute`` of the run is refused meanwhile,
                                 and listings show the run as running (not resumable)

Each batch of records is one Lua script, so it is atomic. A ``task`` record of a
completed task joins the log only if ``HSETNX done NAME`` succeeds: a result is recorded
exactly once per run and task, whichever process (or session, or retried call) brings it.
Every batch carries its writer's id and a batch number; a batch retried after a lost
reply is recognised and not applied twice. Result messages are acknowledged only once the
batch holding their record is applied (``durable``), so a result is never lost either: if
Redis goes away mid-run, calls are retried with backoff (the queue's ``retries`` and
``retry_backoff``) and a warning, and an unacknowledged result is delivered again and
recorded (or found recorded) when it comes back.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from anyio.abc import TaskStatus
from redis.exceptions import NoScriptError, ResponseError

from ..._logging import get_logger
from ...errors import WorkflowError
from ...orchestrator._runstore import (
    Ack,
    BufferedRunLog,
    LoadedRun,
    RunLog,
    RunStore,
    RunSummary,
    safe_id,
    unknown_run,
)
from ...orchestrator.status import WorkflowState
from ...queue.redis._retry import TRANSIENT, backoff

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ...queue.redis import RedisQueue

__all__ = ["RedisRunStore"]

log = get_logger("swarm_runtime.orchestrator")

_TRANSIENT = TRANSIENT
#: records per script call (bounds one script's run time)
BATCH = 2000

_CREATE = """
local base, runs = ARGV[1], ARGV[2]
local meta, logk = base .. ':meta', base .. ':log'
if redis.call('EXISTS', meta) == 1 then
  if redis.call('LINDEX', logk, 0) == ARGV[8] then return 2 end
  return 0
end
redis.call('HSET', meta, 'name', ARGV[4], 'fingerprint', ARGV[5], 'created_at', ARGV[6],
  'updated_at', ARGV[6], 'state', 'pending', 'sessions', 0, 'tasks', ARGV[7])
redis.call('RPUSH', logk, ARGV[8])
redis.call('ZADD', runs, ARGV[6], ARGV[3])
return 1
"""

#: seconds a run stays claimed by a process that stopped renewing it (it died)
LIVE_TTL = 15.0

_CLAIM = """
local live = ARGV[1] .. ':live'
local held = redis.call('GET', live)
if held and held ~= ARGV[2] then return held end
redis.call('SET', live, ARGV[2], 'PX', ARGV[3])
return false
"""

_KEEP = """
local live = ARGV[1] .. ':live'
if redis.call('GET', live) == ARGV[2] then
  redis.call('PEXPIRE', live, ARGV[3])
  return 1
end
if redis.call('EXISTS', live) == 0 then
  redis.call('SET', live, ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_RELEASE = """
local live = ARGV[1] .. ':live'
if redis.call('GET', live) == ARGV[2] then redis.call('DEL', live) end
return 1
"""

_APPEND = """
local base = ARGV[1]
local meta, logk, done = base .. ':meta', base .. ':log', base .. ':done'
if redis.call('EXISTS', meta) == 0 then return -1 end
local wkey = 'w:' .. ARGV[2]
local seq = tonumber(ARGV[3])
if seq <= tonumber(redis.call('HGET', meta, wkey) or '0') then return -2 end
redis.call('HSET', meta, wkey, seq)
local recorded = 0
local items = {}
for i = 9, #ARGV, 2 do
  local name = ARGV[i]
  if name == '' then
    items[#items + 1] = ARGV[i + 1]
  elseif redis.call('HSETNX', done, name, '1') == 1 then
    items[#items + 1] = ARGV[i + 1]
    recorded = recorded + 1
  end
end
for i = 1, #items, 500 do
  redis.call('RPUSH', logk, unpack(items, i, math.min(i + 499, #items)))
end
if ARGV[4] ~= '0' then redis.call('HINCRBY', meta, 'sessions', tonumber(ARGV[4])) end
if ARGV[5] ~= '' then redis.call('HSET', meta, 'state', ARGV[5]) end
if ARGV[6] == 'n' then
  redis.call('HDEL', meta, 'error')
elseif ARGV[6] == 's' then
  redis.call('HSET', meta, 'error', ARGV[7])
end
if ARGV[8] ~= '' then
  local current = tonumber(redis.call('HGET', meta, 'updated_at') or '0')
  if tonumber(ARGV[8]) > current then redis.call('HSET', meta, 'updated_at', ARGV[8]) end
end
return recorded
"""


class _Caller:
    """Script calls on a borrowed client, retried with backoff when the connection is lost."""

    def __init__(self, client: aioredis.Redis, url: str, retries: int, backoff: float) -> None:
        self.client = client
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._shas: dict[str, str] = {}

    async def script(self, source: str, *args: Any) -> Any:
        async def call() -> Any:
            sha = self._shas.get(source)
            if sha is None:
                sha = self._shas[source] = await self.client.script_load(source)
            try:
                return await self.client.evalsha(sha, 0, *args)
            except NoScriptError:
                self._shas.pop(source, None)
                raise

        return await self.retrying(call, "run store script")

    async def retrying(self, fn: Any, what: str) -> Any:
        failures = 0
        while True:
            try:
                return await fn()
            except NoScriptError:
                continue  # Redis restarted and forgot the script: load it again
            except _TRANSIENT as exc:
                failures = await backoff(
                    failures,
                    exc,
                    url=self.url,
                    what=what,
                    retries=self.retries,
                    base_delay=self.backoff,
                    error=WorkflowError,
                )
            except ResponseError as exc:
                raise WorkflowError(
                    f"the Redis server at {self.url} refused a run-store call ({what}): {exc}"
                ) from exc


class _RedisRunLog(BufferedRunLog):
    batch_size = BATCH

    def __init__(self, run_id: str, base: str, caller: _Caller) -> None:
        super().__init__(run_id)
        self._base = base
        self._caller = caller
        self._writer_id = os.urandom(6).hex()
        self._seq = 0
        self._owner: str | None = None  # set while this process executes the run

    async def writer(
        self, ack: Ack, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await self._claim()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_claim)
            task_status.started()
            await self._write_loop(ack)

    async def _claim(self) -> None:
        """Mark the run as being executed here (refused if another process executes it)."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{self._writer_id}"
        held = await self._caller.script(_CLAIM, self._base, owner, int(LIVE_TTL * 1000))
        if held:
            raise WorkflowError(
                f"run {self.run_id!r} is being executed by another process ({held.decode()}); "
                f"if that process died, try again in {LIVE_TTL:g}s"
            )
        self._owner = owner

    async def _keep_claim(self) -> None:
        while True:
            await anyio.sleep(LIVE_TTL / 3)
            try:
                kept = await self._caller.script(
                    _KEEP, self._base, self._owner, int(LIVE_TTL * 1000)
                )
            except WorkflowError as exc:
                log.warning("could not renew the run's claim", run_id=self.run_id, error=str(exc))
                continue
            if not kept:
                log.warning(
                    "another process claimed this run while it was executing here",
                    run_id=self.run_id,
                )

    async def _store_batch(self, records: list[dict[str, Any]]) -> None:
        sessions = 0
        state = ""
        error_mode = ""
        error = ""
        updated = 0.0
        args: list[Any] = []
        for record in records:
            kind = record.get("k")
            at = record.get("at")
            if isinstance(at, (int, float)):
                updated = max(updated, float(at))
            name = ""
            if kind == "task" and record.get("state") == "completed":
                name = str(record.get("name"))
            elif kind == "session":
                sessions += 1
                state, error_mode, error = WorkflowState.INTERRUPTED.value, "n", ""
            elif kind == "end":
                state = str(record.get("state", "interrupted"))
                found = record.get("error")
                error_mode, error = ("n", "") if found is None else ("s", str(found))
            args += (name, orjson.dumps(record))
        self._seq += 1
        await self._caller.script(
            _APPEND,
            self._base,
            self._writer_id,
            self._seq,
            sessions,
            state,
            error_mode,
            error,
            repr(updated) if updated else "",
            *args,
        )

    async def _release(self) -> None:
        if self._owner is not None:
            owner, self._owner = self._owner, None
            with contextlib.suppress(WorkflowError):
                await self._caller.script(_RELEASE, self._base, owner)


class RedisRunStore(RunStore):
    """Runs kept in Redis under ``PREFIX:wf:`` (the default for ``redis://`` queues)."""

    durable = True

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "swarm",
        url: str = "redis",
        retries: int = 6,
        retry_backoff: float = 0.05,
    ) -> None:
        self.prefix = prefix
        self._caller = _Caller(client, url, retries, retry_backoff)
        self._runs_key = f"{prefix}:wf:runs"

    @classmethod
    def for_queue(cls, queue: RedisQueue) -> RedisRunStore:
        """A store on the queue's own connection pool, prefix and retry policy (it must not
        be used after the queue is closed)."""
        return cls(
            queue.client,
            prefix=queue.prefix,
            url=queue.url,
            retries=queue.retries,
            retry_backoff=queue.retry_backoff,
        )

    def _base(self, run_id: str) -> str:
        return f"{self.prefix}:wf:r:{run_id}"

    async def create(self, header: dict[str, Any]) -> RunLog:
        run_id = str(header["run_id"])
        if not safe_id(run_id):
            raise WorkflowError(f"bad run id {run_id!r}")
        created = await self._caller.script(
            _CREATE,
            self._base(run_id),
            self._runs_key,
            run_id,
            str(header.get("name", "")),
            str(header.get("fingerprint", "")),
            repr(float(header.get("created_at", 0.0))),
            len(header.get("tasks", ())),
            orjson.dumps(header),
        )
        if created == 0:
            raise WorkflowError(f"a run with id {run_id!r} already exists")
        return _RedisRunLog(run_id, self._base(run_id), self._caller)

    async def load(self, run_id: str) -> tuple[LoadedRun, RunLog]:
        client = self._caller.client
        base = self._base(run_id)
        raw: list[bytes] = []
        if safe_id(run_id):
            raw = await self._caller.retrying(
                lambda: client.lrange(f"{base}:log", 0, -1), "load run"
            )
        if not raw:
            known = [s.run_id for s in await self.list_runs()]
            raise WorkflowError(unknown_run(run_id, known, where=self._caller.url))
        records = [orjson.loads(item) for item in raw]
        return LoadedRun.from_records(run_id, records), _RedisRunLog(run_id, base, self._caller)

    async def list_runs(self) -> list[RunSummary]:
        client = self._caller.client
        ids = await self._caller.retrying(lambda: client.zrange(self._runs_key, 0, -1), "list runs")
        if not ids:
            return []

        async def fetch() -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for raw_id in ids:
                    base = self._base(raw_id.decode())
                    pipe.hgetall(f"{base}:meta")
                    pipe.hlen(f"{base}:done")
                    pipe.exists(f"{base}:live")
                return list(await pipe.execute())

        replies = await self._caller.retrying(fetch, "list runs")
        out: list[RunSummary] = []
        for index, raw_id in enumerate(ids):
            meta = {k.decode(): v.decode() for k, v in replies[3 * index].items()}
            if not meta:
                continue
            error = meta.get("error")
            out.append(
                RunSummary(
                    run_id=raw_id.decode(),
                    name=meta.get("name", ""),
                    fingerprint=meta.get("fingerprint", ""),
                    created_at=float(meta.get("created_at", 0.0)),
                    updated_at=float(meta.get("updated_at", 0.0)),
                    state=WorkflowState.RUNNING
                    if replies[3 * index + 2]
                    else WorkflowState(meta.get("state", "pending")),
                    tasks=int(meta.get("tasks", 0)),
                    completed=int(replies[3 * index + 1]),
                    sessions=int(meta.get("sessions", 0)),
                    error=error,
                )
            )
        return sorted(out, key=lambda run: run.created_at)

    async def recorded(self, run_id: str) -> set[str]:
        """Names of the run's tasks whose result is recorded."""
        client = self._caller.client
        names = await self._caller.retrying(
            lambda: client.hkeys(f"{self._base(run_id)}:done"), "recorded tasks"
        )
        return {name.decode() for name in names}
