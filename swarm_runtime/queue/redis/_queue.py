"""``RedisQueue``: the scale-out backend (``redis://HOST:PORT/DB``); see the package docstring."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Sequence
from functools import partial
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    NoScriptError,
    RedisError,
    ResponseError,
)

from ..._args import bad_argument
from ..._logging import get_logger
from ..._redact import redact
from ...clock import Clock
from ...errors import BackendUnavailableError, ConfigError, QueueClosedError, QueueError
from ...message import Message
from .._publishing import PublishBatch
from ..base import NackManyFirst, NackOutcome, QueueOptions, QueueStats, split_options
from ._batch import Batcher
from ._lua import SCRIPTS
from ._retry import TRANSIENT, backoff

__all__ = ["RedisQueue"]

log = get_logger("swarm_runtime.queue.redis")

#: Most messages one subscribe call leases (bounds a script's run time and argument list).
MAX_BATCH = 1000
#: subscribe calls for at most this many messages share script calls with concurrent ones.
SHARED_REQUEST = 16
#: Priorities must be exact as Redis sorted-set scores (doubles).
MAX_PRIORITY = 2**53 - 1
_TRANSIENT = TRANSIENT


#: What a publish hands to the batch: (topic, id, priority, due, dedup key, max_attempts,
#: last_error) and the envelope.
_Publish = tuple[tuple[str | None, ...], bytes]


#: What one subscribe call gets from a shared lease call: messages, and the topic's next due
#: time (b"" if none, or if messages were leased).
_Leased = tuple[list[Message], bytes]

#: The nack script's one-letter outcomes (as bytes of its reply).
_NACK_OUTCOMES: dict[int, NackOutcome] = {
    ord("r"): "requeued",
    ord("d"): "dead_lettered",
    ord("u"): "unknown",
}


class _Script:
    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = ""


class RedisQueue(NackManyFirst):
    """A queue shared by any number of processes through Redis Streams.

    Open it with ``MessageQueue.open("redis://HOST:PORT/DB", prefix="swarm")``. Options
    (keyword arguments, or URL query parameters such as ``redis://h:6379/0?prefix=app``):

    * ``prefix``: first part of every key (default ``swarm``); queues with the same prefix
      on the same database are the same queue.
    * ``consumer``: this process's consumer name in the streams' group (default
      ``HOST:PID:RANDOM``).
    * ``poll_interval``: longest a waiting ``subscribe`` sleeps between checks, in
      seconds (default 1.0); wake-ups normally come sooner, from the publisher.
    * ``retries`` and ``retry_backoff``: how often a lost connection is retried, and the
      first pause (doubling, at most 2 s), before a :class:`QueueError` (default 6, 0.05).
    * ``socket_timeout``, ``connect_timeout``: seconds (default 10, 5).

    Credentials: ``redis://[USER]:PASSWORD@HOST...`` works, but a password on a command line
    is visible to other users of the machine; leave it out and set ``REDIS_PASSWORD`` (and
    ``REDIS_USERNAME``) in the environment instead. ``rediss://`` connects over TLS
    (``ssl_ca_certs=PATH`` in the query names the CA bundle; ``ssl_cert_reqs=none`` turns
    certificate checks off, for tests only). Wherever a URL is shown or stored (run lines,
    reports, ``queue stats``, errors) its password is replaced by ``***``.
    """

    scheme = "redis"
    supports_interrupt = True

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        prefix: str = "swarm",
        consumer: str | None = None,
        poll_interval: float = 1.0,
        retries: int = 6,
        retry_backoff: float = 0.05,
        socket_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        ssl_cert_reqs: str = "required",
        options: QueueOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(options=options, clock=clock)
        if ssl_cert_reqs not in ("required", "optional", "none"):
            raise ConfigError(
                f"ssl_cert_reqs must be required, optional or none, got {ssl_cert_reqs!r}"
            )
        if password is None:
            password = os.environ.get("REDIS_PASSWORD") or None
        if username is None:
            username = os.environ.get("REDIS_USERNAME") or None
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ConfigError(f"prefix must be a non-empty string without spaces, got {prefix!r}")
        for name, value in (
            ("poll_interval", poll_interval),
            ("socket_timeout", socket_timeout),
            ("connect_timeout", connect_timeout),
            ("retry_backoff", retry_backoff),
        ):
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be an int >= 0, got {retries!r}")
        if socket_timeout <= poll_interval + 1:
            raise ConfigError(
                f"socket_timeout ({socket_timeout}) must exceed poll_interval ({poll_interval}) "
                "by more than a second: waiting subscribers block that long in Redis"
            )
        self.host = host
        self.port = port
        self.db = db
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.url = f"{'rediss' if ssl else 'redis'}://{host}:{port}/{db}"
        self.poll_interval = float(poll_interval)
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        self._client = aioredis.Redis(
            host=host,
            port=port,
            db=db,
            username=username,
            password=password,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
            ssl=ssl,
            ssl_ca_certs=ssl_ca_certs,
            ssl_cert_reqs=ssl_cert_reqs,
        )
        self._scripts = {name: _Script(name, source) for name, source in SCRIPTS.items()}
        self._publisher: Batcher[_Publish, str] = Batcher(self._send_publishes)
        self._acker: Batcher[str, bool] = Batcher(
            self._send_acks, max_items=1000, on_unclaimed=self._early_acks_done
        )
        #: id -> lease deadline of the messages this queue delivered and has not settled.
        self._delivered: dict[str, float] = {}
        #: ids acknowledged early (see _ack) whose batch is still on its way.
        self._settling: set[str] = set()
        self._waiters: dict[str, set[anyio.CancelScope]] = {}
        self._consumed: set[str] = set()
        self._leasers: dict[tuple[str, float, int], Batcher[int, _Leased]] = {}
        self._flag_ms = int(self.poll_interval * 1000) + 2000
        self._prefix_b = prefix.encode()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """An unopened queue for ``redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=...]``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        url = redact(url)  # from here on the URL only appears in messages
        if scheme not in ("redis", "rediss"):
            raise ConfigError(f"not a redis:// URL: {url!r}")
        try:
            port = parts.port or 6379
        except ValueError as exc:
            raise ConfigError(f"bad port in queue URL {url!r}: {exc}") from exc
        path = parts.path.strip("/")
        try:
            db = int(path) if path else 0
        except ValueError:
            db = -1
        if db < 0:
            raise ConfigError(
                f"bad database in queue URL {url!r}: expected redis://HOST:PORT/DB with DB a "
                f"number >= 0, got {path!r}"
            )
        query: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key in ("max_attempts", "retries"):
            if key in query:
                query[key] = _number(url, key, query[key], int)
        for key in (
            "lease",
            "dedup_window",
            "poll_interval",
            "retry_backoff",
            "socket_timeout",
            "connect_timeout",
        ):
            if key in query:
                query[key] = _number(url, key, query[key], float)
        common, clock, rest = split_options({**query, **options})
        allowed = {"prefix", "consumer", "poll_interval", "retries", "retry_backoff"}
        allowed |= {"socket_timeout", "connect_timeout", "ssl_ca_certs", "ssl_cert_reqs"}
        unknown = set(rest) - allowed
        if unknown:
            raise ConfigError(
                f"unknown option(s) for the redis:// queue: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(allowed | {'max_attempts', 'lease', 'dedup_window'}))}"
            )
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=scheme == "rediss",
            options=common,
            clock=clock,
            **rest,
        )

    @property
    def client(self) -> aioredis.Redis:
        """The queue's connection pool; the ``redis://`` backend's stores share it (and the
        key prefix), so they must not be used once the queue is closed."""
        return self._client

    def __repr__(self) -> str:
        return f"<RedisQueue {self.url} prefix={self.prefix!r} {self._state.value}>"

    # ------------------------------------------------------------------ lifecycle

    async def _open(self) -> None:
        try:
            await self._client.ping()
            info = await self._client.info("server")
            version = str(info.get("redis_version", "0"))
            if tuple(int(x) for x in version.split(".")[:2]) < (6, 2):
                raise BackendUnavailableError(
                    f"the Redis server at {self.url} is version {version}; the redis:// queue "
                    "needs Redis 6.2 or newer"
                )
            for script in self._scripts.values():
                script.sha = await self._client.script_load(script.source)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()
            if isinstance(exc, (AuthenticationError, ResponseError)):
                raise BackendUnavailableError(
                    f"the Redis server at {self.url} refused the queue: {exc}; check the "
                    "URL's database number and credentials"
                ) from exc
            if isinstance(exc, (RedisError, OSError)):
                raise BackendUnavailableError(
                    f"no Redis server answers at {self.url}: {exc}; start one, or point the "
                    "queue URL at a running server"
                ) from exc
            raise

    async def _close(self) -> None:
        for scopes in self._waiters.values():
            for scope in scopes:
                scope.cancel()
        try:
            with anyio.move_on_after(5):
                await self._publisher.drain()
                await self._acker.drain()
            if self._consumed:
                with anyio.move_on_after(2):
                    await self._client.evalsha(
                        self._scripts["cleanup"].sha,
                        0,
                        self._prefix_b,
                        self.consumer,
                        *sorted(self._consumed),
                    )
        except (RedisError, OSError) as exc:
            log.info("redis queue closed without tidying its consumer", error=str(exc))
        finally:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()

    # ------------------------------------------------------------------ calling Redis

    async def _eval(self, name: str, *args: Any) -> Any:
        """Run a script, reloading it if Redis forgot it, retrying a lost connection."""
        script = self._scripts[name]
        failures = 0
        while True:
            try:
                return await self._client.evalsha(script.sha, 0, self._prefix_b, *args)
            except NoScriptError:
                script.sha = await self._retrying(self._client.script_load, script.source)
            except _TRANSIENT as exc:
                failures = await self._backoff(failures, exc, name)
            except ResponseError as exc:
                raise QueueError(
                    f"the Redis server at {self.url} refused the queue's {name} script: {exc}"
                ) from exc

    async def _retrying(self, fn: Any, *args: Any) -> Any:
        """Call ``fn(*args)`` with the same retry policy as :meth:`_eval`."""
        failures = 0
        while True:
            try:
                return await fn(*args)
            except _TRANSIENT as exc:
                failures = await self._backoff(failures, exc, getattr(fn, "__name__", "call"))
            except ResponseError as exc:
                raise QueueError(f"the Redis server at {self.url} refused a call: {exc}") from exc

    async def _backoff(self, failures: int, exc: BaseException, what: str) -> int:
        if self.is_closed:
            raise QueueClosedError(
                "the redis:// queue was closed while a call was in flight"
            ) from exc
        return await backoff(
            failures,
            exc,
            url=self.url,
            what=what,
            retries=self.retries,
            base_delay=self.retry_backoff,
            error=QueueError,
        )

    # ------------------------------------------------------------------ publishing

    async def _publish(self, batch: PublishBatch) -> list[str]:
        """One message joins the publishes of concurrent callers in one script call; a
        batch is one script call of its own (chunks of :data:`MAX_BATCH` in one MULTI/EXEC)."""
        items = self._items(batch)
        if len(items) == 1:
            return [await self._publisher.submit(items[0])]
        return await self._send_publishes(items)

    async def _publish_all(self, batches: list[PublishBatch]) -> list[str]:
        """Every batch's messages in one transaction (the script takes each message's own
        topic and options): all stored, or none."""
        items = self._items(batches[0])
        for batch in batches[1:]:
            items += self._items(batch)
        return await self._send_publishes(items)

    def _items(self, batch: PublishBatch) -> list[_Publish]:
        """The script's arguments for each message of ``batch``."""
        priority = batch.priority
        if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
            raise bad_argument(
                f"{batch.where}priority",
                priority,
                f"within +/-{MAX_PRIORITY} on the redis:// queue",
            )
        delay = batch.delay
        due = repr(self.clock.time() + delay) if delay > 0 else ""
        max_attempts = str(batch.max_attempts) if batch.max_attempts else ""
        keys = batch.dedup_keys
        topic, p, last_error = batch.topic, str(priority), batch.last_error
        fields = batch.fields
        dumps = orjson.dumps
        # The whole envelope (attempts and last_error are overwritten on delivery); the
        # payloads were checked by the caller, so plain orjson is safe here.
        return [
            (
                (topic, message_id, p, due, (keys and keys[i]) or "", max_attempts, last_error),
                dumps(fields(i)),
            )
            for i, message_id in enumerate(batch.ids)
        ]

    async def _send_publishes(self, items: list[_Publish]) -> list[str]:
        now = self.clock.time()
        window = self.options.dedup_window
        head = (repr(now), repr(now + window), int(window * 1000))
        chunks = [items[i : i + MAX_BATCH] for i in range(0, len(items), MAX_BATCH)]
        replies = await self._eval_all(
            "publish",
            [
                (
                    *head,
                    orjson.dumps([meta for meta, _ in chunk]),
                    *[envelope for _, envelope in chunk],
                )
                for chunk in chunks
            ],
        )
        ids = [str(meta[1]) for meta, _ in items]
        for n, reply in enumerate(replies):
            base = n * MAX_BATCH
            for i in range(0, len(reply), 2):
                ids[base + int(reply[i])] = reply[i + 1].decode()
        return ids

    async def _eval_all(self, name: str, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Run a script once per argument tuple, all in one MULTI/EXEC transaction (one
        call needs none): together or not at all. Scripts that are safe to repeat only."""
        if len(calls) == 1:
            return [await self._eval(name, *calls[0])]
        source = self._scripts[name].source

        async def transaction() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                for args in calls:
                    # EVAL, not EVALSHA: a NOSCRIPT error inside EXEC would not undo the rest
                    pipe.eval(source, 0, self._prefix_b, *args)
                return list(await pipe.execute())

        transaction.__name__ = f"{name} script"  # named in retry warnings and errors
        result: list[Any] = await self._retrying(transaction)
        return result

    # ------------------------------------------------------------------ receiving

    async def _get(
        self, topic: str, batch_size: int, lease: float, timeout: float | None
    ) -> list[Message]:
        give_up = None if timeout is None else anyio.current_time() + timeout
        generation = self._interrupt_generation(topic)
        count = min(batch_size, MAX_BATCH)
        flag_ms = self._flag_ms if timeout != 0 else 0
        self._consumed.add(topic)
        while True:
            self._check_open()
            if count <= SHARED_REQUEST:
                key = (topic, lease, flag_ms)
                batcher = self._leasers.get(key)
                if batcher is None:
                    if len(self._leasers) > 1000:
                        self._leasers.clear()
                    batcher = self._leasers[key] = Batcher(
                        partial(self._send_leases, topic, lease, flag_ms),
                        max_items=64,
                        max_inflight=2,
                        on_unclaimed=self._hand_back,
                    )
                messages, next_due = await batcher.submit(count)
            else:
                # Shielded, so that a cancellation cannot leave a batch leased to nobody.
                with anyio.CancelScope(shield=True):
                    [(messages, next_due)] = await self._send_leases(topic, lease, flag_ms, [count])
            if messages:
                return messages
            if give_up is not None and anyio.current_time() >= give_up:
                return []
            if self._interrupt_generation(topic) != generation:
                return []
            wait = self.poll_interval
            if give_up is not None:
                wait = min(wait, give_up - anyio.current_time())
            if next_due:
                wait = min(wait, float(next_due) - self.clock.time() + 0.001)
            await self._wait(topic, wait)

    async def _send_leases(
        self, topic: str, lease: float, flag_ms: int, counts: list[int]
    ) -> list[_Leased]:
        """Lease messages for several concurrent ``subscribe`` calls in one script call;
        the first caller gets the first messages. Also returns the topic's next due time
        (for those that got nothing and wait)."""
        now = self.clock.time()
        reply = await self._eval(
            "subscribe",
            topic,
            self.consumer,
            repr(now),
            repr(now + lease),
            sum(counts),
            self.options.max_attempts,
            flag_ms,
        )
        if not reply[1]:
            return [([], reply[0])] * len(counts)
        messages = _decode_batch(reply[1], reply[2])
        delivered = self._delivered
        if len(delivered) > 100_000:
            self._forget_expired(now)
        deadline = now + lease
        for message in messages:
            delivered[message.id] = deadline
        if len(counts) == 1:
            return [(messages, b"")]
        out = []
        start = 0
        for count in counts:
            out.append((messages[start : start + count], b""))
            start += count
        return out

    async def _hand_back(
        self, counts: list[int], results: Sequence[_Leased] | None, error: BaseException | None
    ) -> None:
        """Release messages leased for subscribe calls that were cancelled meanwhile."""
        ids = [message.id for messages, _ in results or () for message in messages]
        for message_id in ids:
            self._delivered.pop(message_id, None)
        if ids and not self.is_closed:
            try:
                await self._eval("release", *ids)
            except QueueError as exc:
                log.warning(
                    "could not hand back messages leased for a cancelled subscribe; they "
                    "will be delivered again after their lease",
                    url=self.url,
                    count=len(ids),
                    error=str(exc),
                )

    async def _wait(self, topic: str, seconds: float) -> None:
        """Sleep until a publisher rings the topic's bell, ``seconds`` pass, or we are woken
        locally (interrupt, close)."""
        if seconds < 0.002:
            await anyio.lowlevel.checkpoint()
            return
        scope = anyio.CancelScope()
        scopes = self._waiters.setdefault(topic, set())
        scopes.add(scope)
        try:
            with scope:
                bell = f"{self.prefix}:q:t:{topic}:bell"
                await self._retrying(self._client.blpop, [bell], round(seconds, 3))
        finally:
            scopes.discard(scope)
            if not scopes:
                self._waiters.pop(topic, None)

    def _on_interrupt(self, topic: str) -> None:
        for scope in self._waiters.get(topic, ()):
            scope.cancel()

    # ------------------------------------------------------------------ settling

    async def _ack(self, message_id: str) -> bool:
        """Settle a message; most acks of busy consumers return without a round trip.

        An ack of a message this queue delivered, whose lease has more than a second to
        run, joins an ack batch that another caller is already waiting to send, and
        returns True at once (the message was leased here and not settled here). Acks
        are lost only if the process dies first, or Redis stays unreachable: then the
        message is delivered again after its lease, which at-least-once allows.
        """
        deadline = self._delivered.pop(message_id, None)
        if (
            deadline is not None
            and deadline - self.clock.time() > 1.0
            and self._acker.offer(message_id)
        ):
            self._settling.add(message_id)
            return True
        return await self._acker.submit(message_id)

    async def _early_acks_done(
        self, ids: list[str], results: Sequence[bool] | None, error: BaseException | None
    ) -> None:
        self._settling.difference_update(ids)
        if error is not None:
            log.warning(
                "acks of delivered messages were lost; they will be delivered again after "
                "their lease",
                url=self.url,
                count=len(ids),
                error=str(error),
            )

    def _forget_expired(self, now: float) -> None:
        delivered = self._delivered
        for message_id in [i for i, deadline in delivered.items() if deadline <= now]:
            del delivered[message_id]

    async def _send_acks(self, ids: list[str]) -> list[bool]:
        reply: bytes = await self._eval("ack", orjson.dumps(ids))
        return [c == 0x31 for c in reply]

    async def _ack_many(self, message_ids: Sequence[str]) -> int:
        """One script call for the batch (chunks of :data:`MAX_BATCH` in one MULTI/EXEC)."""
        settling = self._settling
        delivered = self._delivered
        ids = []
        for message_id in message_ids:
            delivered.pop(message_id, None)
            if message_id not in settling:  # acked here already, on its way
                ids.append(message_id)
        if not ids:
            return 0
        replies = await self._eval_all(
            "ack",
            [(orjson.dumps(ids[i : i + MAX_BATCH]),) for i in range(0, len(ids), MAX_BATCH)],
        )
        return sum(reply.count(b"1") for reply in replies)

    async def _nack_many(
        self, message_ids: Sequence[str], delay: float, error: str | None, dead_letter: bool
    ) -> list[NackOutcome]:
        """One script call for the batch (chunks of :data:`MAX_BATCH` in one MULTI/EXEC).

        An id acked here whose ack batch is still on its way is settled: ``"unknown"``
        without asking Redis.
        """
        settling = self._settling
        delivered = self._delivered
        outcomes: list[NackOutcome] = ["unknown"] * len(message_ids)
        ids: list[str] = []
        places: list[int] = []
        for i, message_id in enumerate(message_ids):
            if message_id not in settling:
                delivered.pop(message_id, None)
                ids.append(message_id)
                places.append(i)
        if not ids:
            return outcomes
        head = (
            repr(self.clock.time() + delay) if delay > 0 else "",
            "0" if error is None else "1",
            error or "",
            self.options.max_attempts,
            "1" if dead_letter else "0",
        )
        replies = await self._eval_all(
            "nack",
            [(orjson.dumps(ids[i : i + MAX_BATCH]), *head) for i in range(0, len(ids), MAX_BATCH)],
        )
        codes = b"".join(replies)
        for place, code in zip(places, codes, strict=True):
            outcomes[place] = _NACK_OUTCOMES[code]
        return outcomes

    async def _release(self, message_id: str) -> bool:
        if message_id in self._settling:
            return False
        self._delivered.pop(message_id, None)
        released: bytes = await self._eval("release", message_id)
        return released == b"1"

    async def _extend(self, message_id: str, lease: float) -> bool:
        if message_id in self._settling:
            return False
        now = self.clock.time()
        extended = bool(await self._eval("extend", message_id, repr(now), repr(now + lease)))
        if extended and message_id in self._delivered:
            self._delivered[message_id] = now + lease
        return extended

    # ------------------------------------------------------------------ inspection

    async def _stats(self, topic: str) -> QueueStats:
        ready, delayed, leased, dead = await self._eval(
            "stats", topic, repr(self.clock.time()), self.options.max_attempts
        )
        return QueueStats(topic=topic, ready=ready, delayed=delayed, leased=leased, dead=dead)

    async def _topics(self) -> list[str]:
        return [name.decode() for name in await self._eval("topics")]

    async def _peek(self, topic: str, limit: int) -> list[Message]:
        reply = await self._eval(
            "peek", topic, repr(self.clock.time()), self.options.max_attempts, min(limit, MAX_BATCH)
        )
        return _decode(reply)

    async def _dead_letters(self, topic: str, limit: int | None) -> list[Message]:
        key = f"{self.prefix}:q:t:{topic}:dlq"
        entries = await self._retrying(self._client.xrange, key, "-", "+", limit)
        out = []
        for _, fields in entries:
            data = orjson.loads(fields[b"b"])
            data["attempts"] = int(fields[b"a"])
            data["last_error"] = fields[b"x"].decode()
            out.append(Message.from_dict(data))
        return out

    async def _replay(self, topic: str, ids: list[str] | None) -> int:
        total = 0
        start = "-"
        while True:
            count, start = await self._eval(
                "replay", topic, start, "1" if ids is None else "0", *(ids or ())
            )
            total += int(count)
            if not start:
                return total

    async def _purge_dead(self, topic: str) -> int:
        count: int = await self._eval("purge_dead", topic)
        return count

    async def _purge(self, topic: str) -> int:
        total = 0
        while True:
            count, more = await self._eval("purge", topic)
            total += int(count)
            if not more:
                return total


def _decode_batch(bodies: bytes, unusual: bytes) -> list[Message]:
    """Messages from a subscribe reply: envelopes joined by commas, plus the attempts and
    last errors of those not on a plain first delivery."""
    batch = orjson.loads(b"[" + bodies + b"]")
    for data in batch:
        data["attempts"] = 1
        data["last_error"] = None
    if unusual:
        for index, attempts, error in orjson.loads(unusual):
            data = batch[index]
            data["attempts"] = attempts
            data["last_error"] = error
    build = Message.from_dict
    return [build(data) for data in batch]


def _decode(reply: bytes) -> list[Message]:
    """Messages from a script's JSON array of envelopes (with attempts and last_error)."""
    build = Message.from_dict
    return [build(data) for data in orjson.loads(reply)]


def _number(url: str, key: str, value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(
            f"option {key}={value!r} in queue URL {url!r} is not a valid {kind.__name__}"
        ) from None
