"""The queue interface every backend implements, and the behaviour they share.

A backend implements a handful of ``_underscore`` abstract methods; the public
methods here validate input, check the lifecycle state and delegate, so every
backend refuses bad input with the same errors.
"""

from __future__ import annotations

import abc
import enum
import math
import time
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import anyio
from anyio.abc import TaskStatus

from .. import _json
from .._args import bad_argument, check_count, check_seconds
from .._logging import get_logger
from ..clock import Clock, SystemClock
from ..errors import (
    ConfigError,
    InvalidArgumentError,
    InvalidTopicError,
    PayloadError,
    QueueClosedError,
)
from ..message import Message, new_id, new_ids, validate_topic
from ._publishing import MAX_MESSAGE_BYTES, Outgoing, PublishBatch
from ._registry import create

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MessageQueue",
    "NackOutcome",
    "Outgoing",
    "QueueOptions",
    "QueueStats",
    "split_options",
]

NackOutcome = Literal["requeued", "dead_lettered", "unknown"]
"""What a ``nack`` did: the message will be delivered again, it went to the DLQ, or it was not
leased (already settled, or never known)."""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one topic's messages by state."""

    topic: str
    ready: int
    delayed: int
    leased: int
    dead: int

    @property
    def depth(self) -> int:
        """Messages not yet settled: ready, delayed and leased."""
        return self.ready + self.delayed + self.leased


@dataclass(frozen=True, slots=True)
class QueueOptions:
    """Options shared by every backend.

    ``max_attempts`` is the default number of deliveries before a message is dead-lettered
    (a message's own ``max_attempts`` wins); ``lease`` the default lease in seconds;
    ``dedup_window`` how long a dedup key is remembered.
    """

    max_attempts: int = 5
    lease: float = 30.0
    dedup_window: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not (self.lease > 0 and math.isfinite(self.lease)):
            raise ConfigError(f"lease must be a positive number of seconds, got {self.lease}")
        if self.dedup_window < 0:
            raise ConfigError(f"dedup_window must be >= 0, got {self.dedup_window}")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class MessageQueue(abc.ABC):
    """A durable, at-least-once message queue with leases, retries and a dead-letter queue.

    Open one with :meth:`MessageQueue.open` (``await`` it, or use it with ``async with``).
    Semantics shared by all backends:

    * a received message is *leased*; unacknowledged past its lease it is delivered
      again with ``attempts + 1``;
    * ``nack`` requeues (optionally after a delay) until ``max_attempts`` deliveries,
      then the message goes to the topic's dead-letter queue carrying the last error;
    * higher ``priority`` is delivered first, FIFO within a priority;
    * a ``dedup_key`` seen within the dedup window returns the first message's id and
      stores nothing.
    """

    #: URL scheme of the backend (``memory``, ``file``, ``redis``).
    scheme: str = ""
    #: True if the backend wakes waiting subscribers on :meth:`interrupt`; otherwise
    #: callers must cancel a waiting ``subscribe`` to stop it.
    supports_interrupt: bool = False

    def __init__(self, *, options: QueueOptions | None = None, clock: Clock | None = None) -> None:
        self.options = options or QueueOptions()
        self.clock: Clock = clock or SystemClock()
        self._state = _State.UNOPENED
        self._interrupts: dict[str, int] = {}
        #: set while some owner (a runtime) runs :meth:`maintain`, so a second one does not
        self.maintained = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """An unopened queue of this backend for ``url``; backends override to parse it."""
        common, clock, rest = split_options(options)
        if rest:
            raise ConfigError(
                f"unknown option(s) for the {cls.scheme}:// queue: {', '.join(sorted(rest))}"
            )
        return cls(options=common, clock=clock)

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    def open(url: str = "file://queue", **options: Any) -> _QueueOpener:
        """Open the queue named by ``url``: ``memory://``, ``file://DIR`` (or a plain
        directory path) or ``redis://HOST:PORT/DB``.

        Use as ``q = await MessageQueue.open(url)`` or ``async with MessageQueue.open(url) as q``.
        Keyword options go to the backend (``max_attempts``, ``lease``, ``dedup_window``,
        ``clock``, and backend-specific ones).
        """
        return _QueueOpener(create(url, **options))

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    @property
    def is_closed(self) -> bool:
        return self._state is _State.CLOSED

    async def start(self) -> Self:
        """Open the backend (idempotent while open; a closed queue cannot be reopened)."""
        if self._state is _State.OPEN:
            return self
        if self._state is _State.CLOSED:
            raise QueueClosedError(
                f"this {self.scheme}:// queue was closed; open a new one with MessageQueue.open()"
            )
        await self._open()
        self._state = _State.OPEN
        return self

    async def close(self) -> None:
        """Flush and close the backend. Idempotent."""
        if self._state is _State.OPEN:
            self._state = _State.CLOSED
            await self._close()
        self._state = _State.CLOSED

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.close()

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            if self._state is _State.CLOSED:
                raise QueueClosedError(
                    f"the {self.scheme}:// queue is closed; open a new one with MessageQueue.open()"
                )
            raise QueueClosedError(
                f"the {self.scheme}:// queue is not open yet; use 'await MessageQueue.open(...)' "
                "or 'async with MessageQueue.open(...)'"
            )

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        topic: str,
        payload: Any = None,
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_key: str | None = None,
        headers: dict[str, Any] | None = None,
        sender: str | None = None,
        correlation_id: str | None = None,
        workflow_id: str | None = None,
        reply_to: str | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """Store a message durably and return its id.

        Raises :class:`~swarm_runtime.PayloadError` for a payload that is not JSON,
        :class:`~swarm_runtime.InvalidTopicError` for a bad topic name.
        """
        self._check_publish(topic, delay, priority, max_attempts, headers)
        if dedup_key is not None:
            _check_dedup_key(dedup_key, "dedup_key")
        batch = PublishBatch(
            topic,
            [new_id()],
            [payload],
            [_json.dumps(payload)],
            priority,
            float(delay),
            None if dedup_key is None else [dedup_key],
            True,
            time.time(),
            sender,
            headers,
            correlation_id,
            workflow_id,
            reply_to,
            max_attempts,
        )
        return (await self._publish(batch))[0]

    async def publish_message(
        self, message: Message, *, delay: float = 0.0, dedup_key: str | None = None
    ) -> str:
        """Store a prepared :class:`Message` (its ``attempts`` is reset) and return its id."""
        self._check_publish(
            message.topic, delay, message.priority, message.max_attempts, message.headers
        )
        if dedup_key is not None:
            _check_dedup_key(dedup_key, "dedup_key")
        body = _json.dumps(message.payload)
        message.__dict__["attempts"] = 0
        batch = PublishBatch(
            message.topic,
            [message.id],
            [message.payload],
            [body],
            message.priority,
            float(delay),
            None if dedup_key is None else [dedup_key],
            False,
            message.created_at,
            message.sender,
            message.headers,
            message.correlation_id,
            message.workflow_id,
            message.reply_to,
            message.max_attempts,
            message.last_error,
        )
        return (await self._publish(batch))[0]

    async def publish_many(
        self,
        topic: str,
        payloads: Sequence[Any],
        *,
        delay: float = 0.0,
        priority: int = 0,
        dedup_keys: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Store a batch of messages of ``topic`` durably, as a whole; returns their ids in order.

        One group commit on disk, one script call on Redis: when it returns every message is
        stored; when it raises, none is (a payload that is not JSON, at any position, is
        refused before anything is written). ``dedup_keys`` (one per payload, ``None`` for
        none) work as in :meth:`publish`, within the batch too: a key seen before, or earlier
        in the batch, returns the first message's id and stores nothing.
        """
        self._check_publish(topic, delay, priority, None, None)
        if isinstance(payloads, (str, bytes, dict)) or not isinstance(payloads, Sequence):
            raise bad_argument("payloads", payloads, "a list of payloads", kind=False)
        count = len(payloads)
        keys: list[str | None] | None = None
        if dedup_keys is not None:
            keys = list(dedup_keys)
            if len(keys) != count:
                raise InvalidArgumentError(
                    f"dedup_keys must have one entry per payload: got {len(keys)} for {count}"
                )
            for i, key in enumerate(keys):
                if key is not None:
                    _check_dedup_key(key, f"dedup_keys[{i}]")
        if not count:
            return []
        payloads = list(payloads)
        batch = PublishBatch(
            topic,
            new_ids(count),
            payloads,
            _json.dumps_many(payloads),
            priority,
            float(delay),
            keys,
            True,
            time.time(),
        )
        return await self._publish(batch)

    async def publish_all(
        self,
        messages: Sequence[Outgoing],
        *,
        routes: Sequence[tuple[str, int | None]] | None = None,
    ) -> list[str]:
        """Store messages of any topics, each with its own options (:class:`Outgoing`),
        durably and as a whole; returns their ids in order.

        Every message is checked as :meth:`publish` checks it before anything is stored,
        and an error names its position (``messages[3].priority``). One group commit on
        disk, one transaction on Redis: when it returns every message is stored; when it
        raises, none is. Dedup keys work as in :meth:`publish_many`, within the batch too.

        ``routes``, for a caller that addresses messages by other names (as
        :meth:`Runtime.send_all` addresses agents): each message's ``(topic,
        max_attempts)``, used in place of its ``to`` and where its own ``max_attempts``
        is None, so the messages need not be copied.
        """
        if self._state is not _State.OPEN:
            self._check_open()
        if isinstance(messages, (str, bytes, dict)) or not isinstance(messages, Sequence):
            raise bad_argument("messages", messages, "a list of Outgoing", kind=False)
        count = len(messages)
        if routes is not None and len(routes) != count:
            raise InvalidArgumentError(
                f"routes must have one entry per message: got {len(routes)} for {count}"
            )
        if not count:
            return []
        topics: list[str] = []
        check = self._check_publish
        for i, m in enumerate(messages):
            if type(m) is not Outgoing:
                raise bad_argument(f"messages[{i}]", m, "an Outgoing", kind=False)
            topics.append(m.to if routes is None else routes[i][0])
            try:
                check(topics[i], m.delay, m.priority, m.max_attempts, m.headers)
                if m.dedup_key is not None:
                    _check_dedup_key(m.dedup_key, "dedup_key")
            except (InvalidArgumentError, PayloadError):
                # checked again to name the message (kept off the path of good ones)
                where = f"messages[{i}]."
                check(topics[i], m.delay, m.priority, m.max_attempts, m.headers, where)
                _check_dedup_key(m.dedup_key, f"{where}dedup_key")
                raise
        payloads = [m.payload for m in messages]
        try:
            bodies = _json.dumps_many(payloads)
        except PayloadError:
            for i, payload in enumerate(payloads):
                _json.dumps(payload, what=f"messages[{i}].payload")
            raise
        ids = new_ids(count)
        now = time.time()
        batches = [
            PublishBatch(
                topics[i],
                [ids[i]],
                [m.payload],
                [bodies[i]],
                m.priority,
                float(m.delay),
                None if m.dedup_key is None else [m.dedup_key],
                True,
                now,
                m.sender,
                m.headers,
                m.correlation_id,
                m.workflow_id,
                m.reply_to,
                m.max_attempts if routes is None or m.max_attempts is not None else routes[i][1],
                None,
                i,
            )
            for i, m in enumerate(messages)
        ]
        return await self._publish_all(batches)

    def _check_publish(
        self,
        topic: str,
        delay: float,
        priority: int,
        max_attempts: int | None,
        headers: dict[str, Any] | None,
        where: str = "",
    ) -> None:
        """The checks every publish shares (before anything is encoded); ``where`` prefixes
        the names in errors (``messages[3].`` in :meth:`publish_all`)."""
        if self._state is not _State.OPEN:
            self._check_open()
        try:
            validate_topic(topic)
        except InvalidTopicError as exc:
            if not where:
                raise
            raise InvalidTopicError(f"{where}to: {exc}") from None
        if (type(delay) is not int and type(delay) is not float) or not 0 <= delay < math.inf:
            check_seconds(f"{where}delay", delay)
        if type(priority) is not int:
            raise bad_argument(f"{where}priority", priority, "an int", kind=False)
        if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
            check_count(f"{where}max_attempts", max_attempts)
        if headers:
            if type(headers) is not dict:
                raise bad_argument(f"{where}headers", headers, "a dict or None", kind=False)
            _json.dumps(headers, what=f"{where}headers")
        elif headers is not None and type(headers) is not dict:
            raise bad_argument(f"{where}headers", headers, "a dict or None", kind=False)

    # ------------------------------------------------------------------ receiving

    async def subscribe(
        self,
        topic: str,
        batch_size: int = 1,
        lease: float | None = None,
        *,
        timeout: float | None = 0.0,
    ) -> list[Message]:
        """Lease up to ``batch_size`` ready messages of ``topic``.

        ``timeout`` is how long to wait for at least one message: ``0`` (the default)
        returns at once, possibly with an empty list; ``None`` waits as long as it takes.
        Each message is leased for ``lease`` seconds (the queue's default if ``None``).
        """
        if self._state is not _State.OPEN:
            self._check_open()
        validate_topic(topic)
        if type(batch_size) is not int or batch_size < 1:
            check_count("batch_size", batch_size)
        if lease is None:
            lease = self.options.lease
        elif type(lease) is not float or not 0 < lease < math.inf:
            lease = check_seconds("lease", lease, positive=True)
            assert lease is not None
        if timeout is not None and timeout != 0:
            check_seconds("timeout", timeout, none=True)
        return await self._get(topic, batch_size, lease, timeout)

    async def consume(
        self, topic: str, *, lease: float | None = None, batch_size: int = 1
    ) -> AsyncIterator[Message]:
        """Yield messages of ``topic`` as they arrive, forever; ack or nack each one."""
        while True:
            batch = await self.subscribe(topic, batch_size, lease, timeout=None)
            for message in batch:
                yield message

    async def maintain(
        self, interval: float = 0.05, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Background upkeep for a task group to run while the queue is open (a runtime
        starts it): backends that write lazily (acks, compaction) do it here. The queue is
        correct without it. This base version has nothing to do and returns at once."""
        task_status.started()

    def interrupt(self, topic: str) -> None:
        """Make ``subscribe`` calls now waiting on ``topic`` in this process return early,
        with an empty list (how a runtime stops its consumers without cancelling them).

        Only backends with ``supports_interrupt`` honour it.
        """
        self._interrupts[topic] = self._interrupts.get(topic, 0) + 1
        self._on_interrupt(topic)

    def _interrupt_generation(self, topic: str) -> int:
        return self._interrupts.get(topic, 0)

    def _on_interrupt(self, topic: str) -> None:  # noqa: B027 - optional hook
        """Backend hook: wake the subscribers waiting on ``topic``."""

    # ------------------------------------------------------------------ settling

    async def acknowledge(self, message_id: str) -> bool:
        """Settle a delivered message for good. Returns False if it was already settled."""
        if self._state is not _State.OPEN:
            self._check_open()
        return await self._ack(message_id)

    async def acknowledge_many(self, message_ids: Sequence[str]) -> int:
        """Settle a batch of delivered messages for good; returns how many were settled
        (ids already settled, or unknown, are skipped). Written as one record on disk and
        one script call on Redis, so a crash never keeps part of the batch settled and
        part of it not (the rest of :meth:`acknowledge`'s contract is the same)."""
        if self._state is not _State.OPEN:
            self._check_open()
        if isinstance(message_ids, (str, bytes)) or not isinstance(message_ids, Sequence):
            raise bad_argument("message_ids", message_ids, "a list of message ids", kind=False)
        if not message_ids:
            return 0
        return await self._ack_many(message_ids)

    async def nack_many(
        self,
        message_ids: Sequence[str],
        *,
        delay: float | None = None,
        error: str | None = None,
        dead_letter: bool = False,
    ) -> list[NackOutcome]:
        """:meth:`nack` for a batch of delivered messages (same options for all); returns
        each one's outcome, in order (an id repeated in the list is ``"unknown"`` the
        second time). One write on disk and one script call on Redis for the batch, so a
        killed process keeps all of it or none of it."""
        if self._state is not _State.OPEN:
            self._check_open()
        if isinstance(message_ids, (str, bytes)) or not isinstance(message_ids, Sequence):
            raise bad_argument("message_ids", message_ids, "a list of message ids", kind=False)
        for i, message_id in enumerate(message_ids):
            if not isinstance(message_id, str):
                raise bad_argument(f"message_ids[{i}]", message_id, "a message id", kind=False)
        if delay is not None:
            _check_delay(delay)
        if not message_ids:
            return []
        return await self._nack_many(message_ids, delay or 0.0, error, dead_letter)

    async def nack(
        self,
        message_id: str,
        *,
        delay: float | None = None,
        error: str | None = None,
        dead_letter: bool = False,
    ) -> NackOutcome:
        """Give a delivered message back after a failure.

        It is delivered again after ``delay`` seconds, unless it has used its
        ``max_attempts`` (or ``dead_letter`` is set, for errors not worth retrying):
        then it goes to the dead-letter queue with ``error``.
        """
        self._check_open()
        if delay is not None:
            _check_delay(delay)
        if dead_letter:
            return await self._nack_dead(message_id, error)
        return await self._nack(message_id, delay or 0.0, error)

    async def release(self, message_id: str) -> bool:
        """Hand a leased message back untouched (shutdown): its attempt is not counted."""
        self._check_open()
        return await self._release(message_id)

    async def extend(self, message_id: str, lease: float) -> bool:
        """Extend a lease to ``lease`` seconds from now (a heartbeat). False if not leased."""
        self._check_open()
        check_seconds("lease", lease, positive=True)
        return await self._extend(message_id, lease)

    # ------------------------------------------------------------------ inspection

    async def depth(self, topic: str) -> int:
        """Messages of ``topic`` not yet settled (ready, delayed and leased)."""
        return (await self.stats(topic)).depth

    async def stats(self, topic: str) -> QueueStats:
        """Counts of ``topic``'s messages by state."""
        self._check_open()
        validate_topic(topic)
        return await self._stats(topic)

    async def topics(self) -> list[str]:
        """Every topic this queue holds messages (or dead letters) for, sorted."""
        self._check_open()
        return sorted(await self._topics())

    async def peek(self, topic: str, limit: int = 10) -> list[Message]:
        """Up to ``limit`` ready messages in delivery order, without leasing them."""
        self._check_open()
        validate_topic(topic)
        check_count("limit", limit, minimum=0)
        return await self._peek(topic, limit)

    async def dead_letters(self, topic: str, limit: int | None = None) -> list[Message]:
        """The topic's dead letters, oldest first; ``last_error`` says why each one died."""
        self._check_open()
        validate_topic(topic)
        check_count("limit", limit, minimum=0, none=True)
        return await self._dead_letters(topic, limit)

    async def replay(self, topic: str, ids: list[str] | None = None) -> int:
        """Move dead letters (all, or those in ``ids``) back to ready with attempts reset."""
        self._check_open()
        validate_topic(topic)
        return await self._replay(topic, ids)

    async def purge_dead_letters(self, topic: str) -> int:
        """Delete the topic's dead letters; returns how many."""
        self._check_open()
        validate_topic(topic)
        return await self._purge_dead(topic)

    async def purge(self, topic: str) -> int:
        """Delete the topic's ready and delayed messages (not leased ones); returns how many."""
        self._check_open()
        validate_topic(topic)
        return await self._purge(topic)

    # ------------------------------------------------------------------ backend hooks

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (files, connections)."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @abc.abstractmethod
    async def _publish(self, batch: PublishBatch) -> list[str]:
        """Backend hook: store a validated batch together, or none of it; returns the ids
        (a duplicate's is the stored message's id: same dedup key within the window, or
        an id already stored)."""

    async def _publish_all(self, batches: list[PublishBatch]) -> list[str]:
        """Backend hook: store validated batches (of any topics and envelopes) together, or
        none of them; returns their ids in order, as :meth:`_publish` does.

        This default stores them one by one with :meth:`_publish`: whole only on a backend
        whose ``_publish`` never suspends and never fails once the input is checked (memory);
        on any other, an error part-way leaves the earlier batches stored, so a durable
        backend overrides it.
        """
        out: list[str] = []
        for batch in batches:
            out += await self._publish(batch)
        return out

    async def _ack_many(self, message_ids: Sequence[str]) -> int:
        """Backend hook: settle a batch; the default acks one by one."""
        settled = 0
        for message_id in message_ids:
            settled += await self._ack(message_id)
        return settled

    async def _nack_many(
        self, message_ids: Sequence[str], delay: float, error: str | None, dead_letter: bool
    ) -> list[NackOutcome]:
        """Backend hook: nack a batch, one outcome per id in order (a repeated id is
        ``"unknown"`` once it was nacked); the default nacks one by one."""
        if dead_letter:
            return [await self._nack_dead(message_id, error) for message_id in message_ids]
        return [await self._nack(message_id, delay, error) for message_id in message_ids]

    @abc.abstractmethod
    async def _get(
        self, topic: str, batch_size: int, lease: float, timeout: float | None
    ) -> list[Message]: ...

    @abc.abstractmethod
    async def _ack(self, message_id: str) -> bool: ...

    @abc.abstractmethod
    async def _nack(self, message_id: str, delay: float, error: str | None) -> NackOutcome: ...

    async def _nack_dead(self, message_id: str, error: str | None) -> NackOutcome:
        """Backend hook: dead-letter a leased message now, whatever its attempts.

        The default, for backends without it, requeues like a plain nack (the message then
        dies after its remaining attempts) and says so in the log.
        """
        get_logger("swarm_runtime.queue").warning(
            "backend cannot dead-letter early; message requeued", backend=self.scheme
        )
        return await self._nack(message_id, 0.0, error)

    @abc.abstractmethod
    async def _release(self, message_id: str) -> bool: ...

    @abc.abstractmethod
    async def _extend(self, message_id: str, lease: float) -> bool: ...

    @abc.abstractmethod
    async def _stats(self, topic: str) -> QueueStats: ...

    @abc.abstractmethod
    async def _topics(self) -> list[str]: ...

    @abc.abstractmethod
    async def _peek(self, topic: str, limit: int) -> list[Message]: ...

    @abc.abstractmethod
    async def _dead_letters(self, topic: str, limit: int | None) -> list[Message]: ...

    @abc.abstractmethod
    async def _replay(self, topic: str, ids: list[str] | None) -> int: ...

    @abc.abstractmethod
    async def _purge_dead(self, topic: str) -> int: ...

    @abc.abstractmethod
    async def _purge(self, topic: str) -> int: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.value}>"


class NackManyFirst(MessageQueue):
    """For a backend whose primitive is :meth:`_nack_many` (one script call, one chunk of
    records): a single nack, and an early dead-letter, are its one-id case."""

    async def _nack(self, message_id: str, delay: float, error: str | None) -> NackOutcome:
        [outcome] = await self._nack_many((message_id,), delay, error, False)
        return outcome

    async def _nack_dead(self, message_id: str, error: str | None) -> NackOutcome:
        [outcome] = await self._nack_many((message_id,), 0.0, error, True)
        return outcome


def _check_delay(delay: float) -> None:
    check_seconds("delay", delay)


def _check_dedup_key(key: object, name: str) -> None:
    if not isinstance(key, str) or not key:
        raise bad_argument(name, key, "a non-empty str", kind=isinstance(key, str))


def split_options(options: dict[str, Any]) -> tuple[QueueOptions, Clock | None, dict[str, Any]]:
    """Separate the shared options (and ``clock``) from backend-specific ones."""
    rest = dict(options)
    clock = rest.pop("clock", None)
    common = {
        key: rest.pop(key) for key in ("max_attempts", "lease", "dedup_window") if key in rest
    }
    return QueueOptions(**common), clock, rest


class _QueueOpener:
    """What :meth:`MessageQueue.open` returns: awaitable, or an async context manager."""

    def __init__(self, queue: MessageQueue) -> None:
        self._queue = queue

    def __await__(self) -> Generator[Any, None, MessageQueue]:
        return self._queue.start().__await__()

    async def __aenter__(self) -> MessageQueue:
        return await self._queue.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self._queue.close()
