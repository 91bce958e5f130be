"""``FileQueue``: the durable, embedded default backend (``file://DIR``).

One append-only, segmented log per queue directory (see ``queue/README.md`` for the
format), a compact in-memory index rebuilt from it on open, group commit for publishes,
and an exclusive directory lock. Disk work happens in worker threads, one hop per batch.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import orjson
from anyio.abc import TaskStatus

from ... import _json
from ..._logging import get_logger
from ...clock import Clock
from ...errors import ConfigError, PayloadError, QueueError, QueueFormatError
from ...message import Message, new_id, validate_topic
from ..base import MessageQueue, NackOutcome, QueueOptions, QueueStats, split_options
from . import _codec
from ._codec import HAS_DEDUP, decode_msg, encode_meta, encode_msg, envelope_of, make_message
from ._format import (
    DEAD_HEAD,
    FORMAT_VERSION,
    FRAME,
    KEY_SIZE,
    LEASE_ITEM,
    MSG_HEAD,
    REQUEUE_HEAD,
    RecordType,
    State,
    check_record,
    frame,
    message_key,
    scan,
)
from ._index import Index, TopicIndex
from ._journal import Batch, FsyncPolicy, Journal
from ._lock import DirectoryLock, lock_holder
from ._log import Log, fsync_directory
from ._recovery import RecoveryReport, recover
from ._snapshot import discard_snapshot, load_snapshot, save_snapshot

__all__ = ["FileQueue", "FileQueueInfo"]

log = get_logger("swarm_runtime.queue.file")

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_ZOMBIE = State.ZOMBIE
_PARKED = State.PARKED

FORMAT_FILE = "FORMAT"
LOG_DIR = "log"
MiB = 1024 * 1024
MAX_MESSAGE_BYTES = 64 * MiB
_PRIORITY_RANGE = (-(2**63), 2**63 - 1)
_FSYNC_POLICIES = ("always", "interval", "never")


class _Move:
    """A relocated copy of a message waiting for its batch to reach the disk."""

    __slots__ = ("key", "offset", "old_loc", "size", "slot")

    def __init__(self, slot: int, key: bytes, old_loc: int, offset: int, size: int) -> None:
        self.slot = slot
        self.key = key
        self.old_loc = old_loc
        self.offset = offset
        self.size = size


class _Lease:
    __slots__ = ("deadline", "slot", "topic")

    def __init__(self, slot: int, topic: TopicIndex, deadline: float) -> None:
        self.slot = slot
        self.topic = topic
        self.deadline = deadline


class FileQueueInfo:
    """Figures about a file queue's directory, log and index (for ``queue stats``)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FileQueue(MessageQueue):
    """A durable queue in a directory: ``file://DIR`` (the default backend).

    Options (keyword arguments, or URL query parameters such as ``file://q?fsync=interval``):

    * ``fsync``: ``"always"`` (default) - ``publish`` returns once its record is fsync'd,
      concurrent publishers sharing one fsync (group commit); ``"interval"`` - records are
      written at once but fsync'd at most every ``fsync_interval`` seconds (a power cut can
      lose that much; a crash of the process loses nothing); ``"never"`` - fsync only at
      close and segment rollover, leaving the rest to the OS.
    * ``fsync_interval``: seconds, for ``fsync="interval"`` (default 0.05).
    * ``segment_size``: bytes per log segment before a new one starts (default 64 MiB).
    * ``prefetch``: when a subscriber asks for fewer messages than this (the runtime asks
      for one at a time), the trip to the disk that records its delivery also leases and
      reads the next ones, up to ``prefetch``, so the next subscribes need no trip (default
      32, 0 to turn off). Their delivery is counted when they are prefetched: a crash
      before they are handed out counts one attempt too many for them (never their last).
    * ``read_only``: inspect a queue without taking its lock or changing anything.
    """

    scheme = "file"

    def __init__(
        self,
        directory: str | os.PathLike[str] = "queue",
        *,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 0.05,
        segment_size: int = 64 * MiB,
        prefetch: int = 32,
        read_only: bool = False,
        options: QueueOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(options=options, clock=clock)
        if fsync not in _FSYNC_POLICIES:
            raise ConfigError(f"fsync must be one of {', '.join(_FSYNC_POLICIES)}; got {fsync!r}")
        if not (isinstance(fsync_interval, (int, float)) and 0 < fsync_interval < math.inf):
            raise ConfigError(
                f"fsync_interval must be a positive number of seconds, got {fsync_interval!r}"
            )
        if not isinstance(segment_size, int) or not 64 * 1024 <= segment_size <= 2**31:
            raise ConfigError(
                f"segment_size must be an int from 65536 to 2**31 bytes, got {segment_size!r}"
            )
        if not isinstance(prefetch, int) or not 0 <= prefetch <= 10_000:
            raise ConfigError(f"prefetch must be an int from 0 to 10000, got {prefetch!r}")
        self.directory = Path(os.fspath(directory)).expanduser()
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval = float(fsync_interval)
        self.segment_size = segment_size
        self.prefetch = prefetch
        self.read_only = bool(read_only)
        self.recovery: RecoveryReport | None = None
        self._index = Index()
        self._log = Log(self.directory / LOG_DIR, segment_size, read_only=self.read_only)
        self._lock = DirectoryLock(self.directory)
        self._journal = Journal(
            self._log,
            policy=fsync,
            interval=self.fsync_interval,
            on_written=self._on_written,
            on_failed=self._on_failed,
        )
        self._sync_publish = fsync == "always"
        self._leases: dict[str, _Lease] = {}
        self._lease_heap: list[tuple[float, int, str]] = []
        self._lease_seq = itertools.count()
        self._inflight: dict[bytes, str] = {}  # key -> id of publishes not yet on disk
        self._dedup: dict[str, tuple[str, float, int]] = {}  # key -> (id, expires, segment)
        self._dedup_order: list[tuple[float, str]] = []
        self._acks = bytearray()  # keys acknowledged since the last ACK record
        self._active_segment = 0
        self._compacting = False
        self._compact_due = False
        self.corrupt_reads = 0

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``file://DIR`` (relative), ``file:///abs/dir`` or a plain path; options may also be
        given as query parameters: ``file://queue?fsync=interval&segment_size=8388608``."""
        common, clock, rest = split_options(options)
        path, query = _parse_url(url)
        for name, value in query.items():
            if name in rest:
                raise ConfigError(
                    f"option {name!r} is given both in the URL {url!r} and as an argument"
                )
            rest[name] = value
        known = {"fsync", "fsync_interval", "segment_size", "prefetch", "read_only"}
        unknown = set(rest) - known
        if unknown:
            raise ConfigError(
                f"unknown option(s) for the file:// queue: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}, max_attempts, lease, dedup_window, clock"
            )
        typed = _coerce_options(rest)
        return cls(path, options=common, clock=clock, **typed)

    def __repr__(self) -> str:
        return f"<FileQueue {str(self.directory)!r} {self._state.value}>"

    # ------------------------------------------------------------------ lifecycle

    async def _open(self) -> None:
        report = await anyio.to_thread.run_sync(self._open_sync)
        self._journal.start(str(self.directory))
        self.recovery = report
        for problem in report.problems:
            log.warning("queue recovery", directory=str(self.directory), problem=problem)
        if report.released or report.exhausted:
            log.info(
                "queue reopened after an unclean stop",
                directory=str(self.directory),
                redelivered=report.released,
                dead_lettered=len(report.exhausted),
            )
        for slot in report.exhausted:
            self._append_lazy(
                frame(
                    RecordType.DEAD,
                    DEAD_HEAD.pack(self._index.key(slot), self._index.attempts[slot])
                    + self._index.errors.get(slot, "").encode(),
                )
            )
        self._dedup = report.dedup
        self._dedup_order = [(expires, k) for k, (_, expires, _) in report.dedup.items()]
        heapq.heapify(self._dedup_order)

    def _open_sync(self) -> RecoveryReport:
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise ConfigError(f"queue path {str(directory)!r} exists and is not a directory")
        if self.read_only:
            if not (directory / FORMAT_FILE).exists() and not (directory / LOG_DIR).is_dir():
                raise QueueError(
                    f"no queue at {str(directory)!r} (no {FORMAT_FILE} file, no log): check "
                    "the path"
                )
            self._check_format()
        else:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise QueueError(
                    f"cannot create the queue directory {str(directory)!r}: {exc.strerror}"
                ) from exc
            self._check_format()
            self._lock.acquire()
        try:
            if not self.read_only:
                (directory / LOG_DIR).mkdir(exist_ok=True)
                if not (directory / FORMAT_FILE).exists():
                    self._write_format()
            report = self._load_index()
            if not self.read_only:
                if report.discard:
                    self._log.delete(report.discard)
                    report.active = None
                    for number in report.discard:
                        if number in self._log.numbers:
                            self._log.numbers.remove(number)
                    if self._log.numbers:
                        last = self._log.numbers[-1]
                        report.active = (last, self._log.file_size(last))
                if report.active is not None:
                    self._log.open_active(*report.active)
                    self._active_segment = report.active[0]
            return report
        except BaseException:
            self._log.close()
            self._lock.release()
            raise

    def _load_index(self) -> RecoveryReport:
        """The index from the clean-close snapshot if it matches the log, else from the log."""
        started = time.perf_counter()
        numbers = self._log.discover()
        sizes = {number: self._log.file_size(number) for number in numbers}
        index, dedup, note = load_snapshot(self.directory, sizes)
        if not self.read_only:
            discard_snapshot(self.directory)  # from here on the log moves past it
        if index is not None:
            self._index = index
            report = RecoveryReport(
                segments=len(numbers), from_snapshot=True, messages=len(index), dedup=dedup
            )
            if numbers:
                report.active = (numbers[-1], sizes[numbers[-1]])
            report.elapsed = time.perf_counter() - started
            return report
        report = recover(
            self._log,
            self._index,
            now=self.clock.time(),
            default_max_attempts=self.options.max_attempts,
            read_only=self.read_only,
        )
        report.snapshot_note = note
        return report

    def _check_format(self) -> None:
        path = self.directory / FORMAT_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise QueueError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
        try:
            data = orjson.loads(text)
            version = int(data["format"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise QueueFormatError(
                f"{str(path)!r} is not a swarm-runtime queue format file; is "
                f"{str(self.directory)!r} really a queue directory?"
            ) from exc
        if version > FORMAT_VERSION:
            raise QueueFormatError(
                f"queue directory {str(self.directory)!r} was written by queue format version "
                f"{version}; this swarm-runtime reads version {FORMAT_VERSION}: upgrade "
                "swarm-runtime to open it"
            )
        if version < 1:
            raise QueueFormatError(
                f"{str(path)!r} names format version {version}, which never existed"
            )

    def _write_format(self) -> None:
        path = self.directory / FORMAT_FILE
        tmp = path.with_suffix(".tmp")
        data = orjson.dumps(
            {
                "format": FORMAT_VERSION,
                "kind": "swarm-runtime file queue",
                "created_at": time.time(),
            },
            option=orjson.OPT_INDENT_2,
        )
        with open(tmp, "wb") as f:
            f.write(data + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(self.directory)

    async def _close(self) -> None:
        for topic in self._index.topics:
            _wake(topic, len(topic.waiters))
        clean = False
        try:
            if not self.read_only:
                self._return_parked()
                self._frame_acks()
                await self._journal.flush(sync=True)
                clean = True
        finally:
            with anyio.CancelScope(shield=True):
                await self._journal.stop()
                if clean:
                    self._settle_leases_for_close()
                await anyio.to_thread.run_sync(self._close_sync, clean)

    def _settle_leases_for_close(self) -> None:
        """Unacked leases at close: ready again (first in line), or dead if that was the last
        attempt - what reopening after a crash would make of them too."""
        index = self._index
        for lease in self._leases.values():
            slot = lease.slot
            topic = lease.topic
            if index.state[slot] != _LEASED:
                continue
            topic.n_leased -= 1
            limit = index.max_attempts[slot] or self.options.max_attempts
            if index.attempts[slot] >= limit:
                index.state[slot] = _DEAD
                index.errors[slot] = (
                    f"the queue was closed during attempt {index.attempts[slot]} of {limit}"
                )
                topic.dead[slot] = None
                continue
            index.state[slot] = _READY
            self._push_front(topic, slot)
            topic.n_ready += 1
        self._leases.clear()
        self._lease_heap.clear()

    def _close_sync(self, clean: bool) -> None:
        try:
            self._log.close()
            if clean:
                sizes = {n: self._log.file_size(n) for n in self._log.discover()}
                try:
                    save_snapshot(self.directory, self._index, sizes, self._dedup)
                except OSError as exc:
                    log.warning(
                        "could not write the index snapshot; the next open will scan the log",
                        directory=str(self.directory),
                        error=str(exc),
                    )
                    discard_snapshot(self.directory)
        finally:
            self._lock.release()

    def _check_writable(self) -> None:
        if self.read_only:
            raise QueueError(
                f"the queue at {str(self.directory)!r} is open read-only (for inspection); "
                "open it without read_only to change it"
            )

    async def flush(self) -> None:
        """Write and fsync everything done so far (acks and nacks are otherwise lazy)."""
        self._check_open()
        if self.read_only:
            return
        self._frame_acks()
        await self._journal.flush(sync=True)

    # ------------------------------------------------------------------ write-path helpers

    @property
    def unwritten(self) -> bool:
        """True while some record (an ack, a lease...) has not reached the log yet."""
        return bool(self._acks) or not self._journal.quiet

    def _frame_acks(self) -> None:
        if self._acks:
            self._journal.add(frame(RecordType.ACK, self._acks), lazy=True)
            self._acks = bytearray()

    def _append_lazy(self, record: bytes) -> Batch:
        """Append a state record nobody needs to wait for (it rides with the next batch)."""
        if self._acks:
            self._frame_acks()  # keep the log in the order things happened
        return self._journal.add(record, lazy=True)

    def _on_written(self, batch: Batch) -> None:
        """A batch is on disk: index its publishes and relocations, wake subscribers."""
        segment = batch.segment
        base = (segment << 32) + batch.start
        if segment != self._active_segment:
            if self._active_segment:
                self._compact_due = True
            self._active_segment = segment
        if not batch.posts:
            return
        index = self._index
        place = index.place
        delayed = index.delayed
        inflight = self._inflight
        placed = 0
        placed_bytes = 0
        last_topic = None
        count = 0
        woken: dict[TopicIndex, int] = {}
        for post in batch.posts:
            if type(post) is _Move:
                slot = index.find(post.key)
                if slot == post.slot and index.loc[slot] == post.old_loc:
                    index.move(slot, base + post.offset, post.size)
                continue
            key, offset, record, topic, priority, max_attempts, state, due, dedup = post
            del inflight[key]
            loc = base + offset
            size = len(record)
            slot = place(key, loc, size, topic.id, priority, 0, max_attempts, state)
            placed += 1
            placed_bytes += size
            if state == _READY:
                rl = topic.lists.get(priority) or topic.ready_list(priority)
                rl.items.append(slot)
                topic.n_ready += 1
            else:
                delayed.push(slot, due)
                topic.n_delayed += 1
            if topic is not last_topic:
                if last_topic is not None:
                    woken[last_topic] = woken.get(last_topic, 0) + count
                last_topic = topic
                count = 0
            count += 1
            if dedup is not None:
                seen = self._dedup.get(dedup)
                if seen is not None:
                    self._dedup[dedup] = (seen[0], seen[1], segment)
        if last_topic is not None:
            woken[last_topic] = woken.get(last_topic, 0) + count
        if placed:
            index.account(segment, placed, placed_bytes)
        for topic, n in woken.items():
            if topic.waiters:
                _wake(topic, n)

    def _on_failed(self, batch: Batch) -> None:
        """A batch could not be written: forget its publishes (their callers get the error)."""
        for post in batch.posts:
            if type(post) is tuple:
                key, dedup = post[0], post[8]
                self._inflight.pop(key, None)
                if dedup is not None:
                    seen = self._dedup.get(dedup)
                    if seen is not None and message_key(seen[0]) == key:
                        del self._dedup[dedup]

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
        """Store a message durably (fsync'd under ``fsync="always"``) and return its id.

        The same contract as :meth:`MessageQueue.publish`; the file queue encodes the record
        straight from the arguments instead of building a :class:`Message` first.
        """
        if dedup_key is not None or delay:
            return await super().publish(
                topic,
                payload,
                delay=delay,
                priority=priority,
                dedup_key=dedup_key,
                headers=headers,
                sender=sender,
                correlation_id=correlation_id,
                workflow_id=workflow_id,
                reply_to=reply_to,
                max_attempts=max_attempts,
            )
        # The checks of MessageQueue._prepare, for the arguments a plain publish can have
        # (the conformance suite holds both paths to the same errors).
        self._check_open()
        validate_topic(topic)
        if type(priority) is not int:
            raise ValueError(f"priority must be an int, got {type(priority).__name__}")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        body = _json.dumps(payload)
        if headers:
            _json.dumps(headers, what="headers")
        else:
            headers = {}
        message_id = new_id()
        batch = self._stage_publish(
            message_id,
            topic,
            body,
            (sender, headers, time.time(), correlation_id, workflow_id, reply_to),
            priority,
            max_attempts or 0,
            0.0,
            None,
            None,
            payload,
            fresh=True,
        )
        if isinstance(batch, Batch):
            await self._journal.wait(batch)
            if (self._compact_due or self._index.emptied) and not self._compacting:
                await self._compact()
        return message_id

    async def _put(
        self, message: Message, body: bytes, *, delay: float, dedup_key: str | None
    ) -> str:
        staged = self._stage_publish(
            message.id,
            message.topic,
            body,
            envelope_of(message),
            message.priority,
            message.max_attempts or 0,
            delay,
            dedup_key,
            message.last_error,
            message.payload,
        )
        if isinstance(staged, str):
            return staged  # a duplicate: the id of the message already stored
        await self._journal.wait(staged)
        if (self._compact_due or self._index.emptied) and not self._compacting:
            await self._compact()
        return message.id

    def _stage_publish(
        self,
        message_id: str,
        topic_name: str,
        body: bytes,
        envelope: tuple[Any, ...],
        priority: int,
        max_attempts: int,
        delay: float,
        dedup_key: str | None,
        last_error: str | None,
        payload: Any,
        *,
        fresh: bool = False,
    ) -> Batch | str:
        """Append the MSG record of a validated message; returns the batch to wait for.

        Returns the stored message's id instead when this is a duplicate (same dedup key
        within the window, or an id already in the queue). ``fresh``: the id was just made
        by :func:`new_id` (32 lowercase hex digits, unique), so neither needs checking.
        """
        if self.read_only:
            self._check_writable()
        dedup = None
        if dedup_key is not None:
            now = self.clock.time()
            self._expire_dedup(now)
            seen = self._dedup.get(dedup_key)
            if seen is not None:
                return seen[0]
            if self.options.dedup_window > 0:
                dedup = (dedup_key, now + self.options.dedup_window)
        if fresh:
            key = bytes.fromhex(message_id)
        else:
            key = message_key(message_id)
            if key in self._inflight or self._index.find(key) >= 0:
                return message_id
        if not -(2**63) <= priority < 2**63:
            raise ValueError(f"priority must fit in a signed 64-bit integer, got {priority}")
        if max_attempts > 0xFFFFFFFF:
            raise ValueError(f"max_attempts must be below 2**32, got {max_attempts}")
        topic = self._index.by_name.get(topic_name) or self._index.topic_index(topic_name)
        meta, flags = encode_meta(message_id, envelope, last_error, dedup)
        if delay > 0:
            state, due = _DELAYED, self.clock.time() + delay
        else:
            state, due = _READY, 0.0
        record = encode_msg(
            key, due, priority, 0, max_attempts, state, topic.ascii, meta, body, flags
        )
        if len(record) > MAX_MESSAGE_BYTES:
            raise PayloadError(
                f"message of {len(record)} bytes is larger than the file queue's limit of "
                f"{MAX_MESSAGE_BYTES} bytes; store large data elsewhere and send a reference",
                path="payload",
                type_name=type(payload).__name__,
            )
        if self._acks:
            self._frame_acks()
        batch = self._journal.add(record, self._sync_publish)
        batch.posts.append(
            (
                key,
                batch.size - len(record),
                record,
                topic,
                priority,
                max_attempts,
                state,
                due,
                dedup_key if dedup else None,
            )
        )
        self._inflight[key] = message_id
        if dedup is not None:
            self._dedup[dedup[0]] = (message_id, dedup[1], -1)
            heapq.heappush(self._dedup_order, (dedup[1], dedup[0]))
        return batch

    def _expire_dedup(self, now: float) -> None:
        order = self._dedup_order
        while order and order[0][0] <= now:
            _, key = heapq.heappop(order)
            seen = self._dedup.get(key)
            if seen is not None and seen[1] <= now:
                del self._dedup[key]

    # ------------------------------------------------------------------ receiving

    async def _get(
        self, topic_name: str, batch_size: int, lease: float, timeout: float | None
    ) -> list[Message]:
        self._check_writable()
        topic = self._index.topic_index(topic_name)
        clock = self.clock
        give_up = None if timeout is None else anyio.current_time() + timeout
        while True:
            self._check_open()
            now = clock.time()
            self._promote(now)
            if topic.parked and self._parked_first(topic):
                return self._hand_out_parked(topic, batch_size, lease, now)
            slots = self._take(topic, batch_size)
            if slots:
                return await self._deliver(topic, slots, lease, now)
            if self._journal.pending or self._acks:
                self._frame_acks()
                await self._journal.flush()
                continue
            if (self._compact_due or self._index.emptied) and not self._compacting:
                await self._compact()
                continue
            if give_up is not None and anyio.current_time() >= give_up:
                return []
            wait = math.inf if give_up is None else give_up - anyio.current_time()
            due = self._next_due()
            if due is not None:
                wait = min(wait, max(0.0, due - now) + 0.001)
            waiter = anyio.Event()
            topic.waiters.append(waiter)
            try:
                if wait == math.inf:
                    await waiter.wait()
                else:
                    with anyio.move_on_after(wait):
                        await waiter.wait()
            except BaseException:
                if waiter.is_set():
                    _wake(topic, 1)  # pass the wake-up on; we are not taking it
                raise
            finally:
                if not waiter.is_set():
                    try:
                        topic.waiters.remove(waiter)
                    except ValueError:
                        pass

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
        index = self._index
        parked = topic.parked
        state = index.state
        deadline = now + lease
        out: list[Message] = []
        while parked and len(out) < count:
            slot, record = parked.popleft()
            topic.n_parked -= 1
            state[slot] = _LEASED
            topic.n_leased += 1
            message = self._decode(slot, record)
            if message is None:
                continue
            self._leases[message.id] = _Lease(slot, topic, deadline)
            heapq.heappush(self._lease_heap, (deadline, next(self._lease_seq), message.id))
            out.append(message)
        return out

    async def _deliver(
        self, topic: TopicIndex, slots: list[int], lease: float, now: float
    ) -> list[Message]:
        """Record the deliveries, read the records and build the messages: one trip to the
        worker thread, shared with whatever else is being written, which also prefetches
        the next messages for small subscribes."""
        index = self._index
        keys = index.keys
        attempts = index.attempts
        loc = index.loc
        size = index.size
        extra = []
        if len(slots) < self.prefetch and topic.n_ready:
            extra = self._take(topic, self.prefetch - len(slots), park=True)
        body = bytearray()
        pack = LEASE_ITEM.pack
        wanted = []
        for slot in slots + extra:
            k = slot * KEY_SIZE
            body += pack(keys[k : k + KEY_SIZE], attempts[slot])
            wanted.append((loc[slot], size[slot]))
        self._append_lazy(frame(RecordType.LEASE, body))
        log_ = self._log
        try:
            records = await self._journal.io(lambda: log_.read(wanted))
        except BaseException:
            self._give_back(topic, slots + extra)
            raise
        if extra:
            state = index.state
            parked = topic.parked
            for slot, record in zip(extra, records[len(slots) :], strict=True):
                if state[slot] == _PARKED:
                    parked.append((slot, record))
        deadline = now + lease
        leases = self._leases
        heap = self._lease_heap
        out: list[Message] = []
        for slot, record in zip(slots, records[: len(slots)], strict=True):
            message = self._decode(slot, record)
            if message is None:
                continue
            leases[message.id] = _Lease(slot, topic, deadline)
            heapq.heappush(heap, (deadline, next(self._lease_seq), message.id))
            out.append(message)
        return out

    def _decode(self, slot: int, record: bytes | None) -> Message | None:
        """Build the delivered message; a record that fails its checks is dropped, loudly."""
        index = self._index
        try:
            if not record:
                raise ValueError("record could not be read back")
            if not check_record(record):
                raise ValueError("record checksum mismatch")
            key, _, priority, _, max_attempts, _, topic, meta, payload, flags = decode_msg(record)
            if key != index.key(slot):
                raise ValueError("record belongs to another message")
        except ValueError as exc:
            self._drop_corrupt(slot, str(exc))
            return None
        last_error = index.errors.get(slot)
        if last_error is None and flags & _codec.HAS_ERROR:
            last_error = meta[7]
        return make_message(
            meta[0],
            topic,
            payload,
            meta,
            index.attempts[slot],
            max_attempts,
            priority,
            last_error,
        )

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
        _wake(topic, len(slots))

    def _push_front(self, topic: TopicIndex, slot: int) -> None:
        rl = topic.ready_list(self._index.prio[slot])
        if rl.head:
            rl.head -= 1
            rl.items[rl.head] = slot
        else:
            rl.items.insert(0, slot)

    def _unpark(self, topic: TopicIndex, slot: int) -> None:
        """Take one slot out of the prefetched list (it is being settled or dropped)."""
        topic.parked = type(topic.parked)(e for e in topic.parked if e[0] != slot)
        topic.n_parked -= 1

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

    # ------------------------------------------------------------------ the reaper

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
                _wake(topic, count)
        heap = self._lease_heap
        while heap and heap[0][0] <= now:
            deadline, _, message_id = heapq.heappop(heap)
            lease = self._leases.get(message_id)
            if lease is None or lease.deadline != deadline:
                continue
            del self._leases[message_id]
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
                _wake(topic, 1)

    def _make_ready(self, topic: TopicIndex, slot: int) -> None:
        index = self._index
        index.state[slot] = _READY
        topic.ready_list(index.prio[slot]).items.append(slot)
        topic.n_ready += 1

    def _kill(self, topic: TopicIndex, slot: int, error: str) -> None:
        index = self._index
        index.state[slot] = _DEAD
        index.errors[slot] = error
        topic.dead[slot] = None
        self._append_lazy(
            frame(
                RecordType.DEAD,
                DEAD_HEAD.pack(index.key(slot), index.attempts[slot])
                + error.encode("utf-8", "replace"),
            )
        )

    async def maintain(
        self,
        interval: float = 0.05,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Background upkeep, for a task group to run while the queue is open.

        Every ``interval`` seconds: expire leases and release due delayed messages (waking
        subscribers), write pending acks (shrinking what a crash can redeliver), fsync under
        ``fsync="interval"`` and compact the log. The queue is correct without it - all of
        this also happens during other calls - but with it nothing waits for the next call.
        Returns when the queue is closed.
        """
        task_status.started()
        while self.is_open:
            await anyio.sleep(interval)
            if not self.is_open:
                return
            self._promote(self.clock.time())
            if self.read_only:
                continue
            try:
                if self._acks or self._journal.pending:
                    self._frame_acks()
                    await self._journal.flush(sync=False)
                if self.fsync == "interval":
                    await self._journal.flush(sync=True)
                if not self._compacting:
                    await self._compact()
            except QueueError as exc:
                if not self.is_open:
                    return
                log.error("queue upkeep failed", directory=str(self.directory), error=str(exc))

    # ------------------------------------------------------------------ settling

    async def _ack(self, message_id: str) -> bool:
        self._check_writable()
        lease = self._leases.pop(message_id, None)
        index = self._index
        if lease is not None:
            slot = lease.slot
            lease.topic.n_leased -= 1
            k = slot * KEY_SIZE
            self._acks += index.keys[k : k + KEY_SIZE]
            index.settle(slot, listed=False)
            return True
        key = message_key(message_id)
        slot = index.find(key)
        if slot < 0:
            return False
        st = index.state[slot]
        topic = index.topics[index.topic[slot]]
        if st == _READY:
            topic.n_ready -= 1
        elif st == _DELAYED:
            topic.n_delayed -= 1
        elif st == _PARKED:
            self._unpark(topic, slot)
            self._acks += key
            index.settle(slot, listed=False)
            return True
        else:
            return False  # dead letters are settled with purge_dead_letters
        self._acks += key
        index.settle(slot, listed=True)
        return True

    async def _nack(self, message_id: str, delay: float, error: str | None) -> NackOutcome:
        self._check_writable()
        lease = self._leases.pop(message_id, None)
        if lease is None:
            return "unknown"
        index = self._index
        slot = lease.slot
        topic = lease.topic
        topic.n_leased -= 1
        if error is not None:
            index.errors[slot] = error
        limit = index.max_attempts[slot] or self.options.max_attempts
        attempts = index.attempts[slot]
        if attempts >= limit:
            self._kill(topic, slot, error or index.errors.get(slot) or "nacked")
            return "dead_lettered"
        due = 0.0
        if delay > 0:
            due = self.clock.time() + delay
            index.state[slot] = _DELAYED
            index.delayed.push(slot, due)
            topic.n_delayed += 1
            _wake(topic, 1)  # a waiting subscriber must re-arm its timer
        else:
            self._make_ready(topic, slot)
            _wake(topic, 1)
        text = b"" if error is None else error.encode("utf-8", "replace")
        self._append_lazy(
            frame(
                RecordType.REQUEUE,
                REQUEUE_HEAD.pack(index.key(slot), attempts, due, error is not None) + text,
            )
        )
        return "requeued"

    async def _release(self, message_id: str) -> bool:
        self._check_writable()
        lease = self._leases.pop(message_id, None)
        if lease is None:
            return False
        index = self._index
        slot = lease.slot
        topic = lease.topic
        topic.n_leased -= 1
        index.attempts[slot] = max(0, index.attempts[slot] - 1)
        self._make_ready(topic, slot)
        self._append_lazy(
            frame(
                RecordType.REQUEUE, REQUEUE_HEAD.pack(index.key(slot), index.attempts[slot], 0.0, 0)
            )
        )
        _wake(topic, 1)
        return True

    async def _extend(self, message_id: str, lease: float) -> bool:
        self._check_writable()
        current = self._leases.get(message_id)
        now = self.clock.time()
        if current is None or current.deadline <= now:
            return False
        current.deadline = now + lease
        heapq.heappush(self._lease_heap, (current.deadline, next(self._lease_seq), message_id))
        return True

    # ------------------------------------------------------------------ inspection

    async def _stats(self, topic_name: str) -> QueueStats:
        topic = self._index.topic_index(topic_name)
        self._promote(self.clock.time())
        return QueueStats(
            topic=topic_name,
            ready=topic.n_ready + topic.n_parked,
            delayed=topic.n_delayed,
            leased=topic.n_leased,
            dead=len(topic.dead),
        )

    async def _topics(self) -> list[str]:
        return [t.name for t in self._index.topics if t.busy]

    async def _fetch(self, slots: list[int]) -> list[Message]:
        """Messages of ``slots`` as they are now, without changing anything."""
        index = self._index
        wanted = [(index.loc[s], index.size[s]) for s in slots]
        keys = [index.key(s) for s in slots]
        log_ = self._log
        records = await self._journal.io(lambda: log_.read(wanted)) if wanted else []
        out = []
        for slot, key, (loc, _), record in zip(slots, keys, wanted, records, strict=True):
            if index.loc[slot] != loc or index.key(slot) != key:
                continue  # settled (or moved) while we read
            st = index.state[slot]
            if st in (State.FREE, _ZOMBIE):
                continue
            message = self._decode(slot, record)
            if message is not None:
                if st == _PARKED:
                    message.__dict__["attempts"] -= 1  # counted ahead of its delivery
                out.append(message)
        return out

    async def _peek(self, topic_name: str, limit: int) -> list[Message]:
        topic = self._index.topic_index(topic_name)
        self._promote(self.clock.time())
        state = self._index.state
        slots: list[int] = [slot for slot, _ in itertools.islice(topic.parked, limit)]
        for priority in topic.order:
            if len(slots) >= limit:
                break
            for slot in topic.lists[priority]:
                if state[slot] == _READY:
                    slots.append(slot)
                    if len(slots) >= limit:
                        break
            if len(slots) >= limit:
                break
        return await self._fetch(slots)

    async def _dead_letters(self, topic_name: str, limit: int | None) -> list[Message]:
        topic = self._index.topic_index(topic_name)
        slots = list(itertools.islice(topic.dead, limit))
        return await self._fetch(slots)

    async def _replay(self, topic_name: str, ids: list[str] | None) -> int:
        self._check_writable()
        topic = self._index.topic_index(topic_name)
        index = self._index
        if ids is None:
            chosen = list(topic.dead)
        else:
            chosen = []
            for message_id in ids:
                slot = index.find(message_key(message_id))
                if slot >= 0 and slot in topic.dead:
                    chosen.append(slot)
        for slot in chosen:
            del topic.dead[slot]
            index.attempts[slot] = 0
            self._make_ready(topic, slot)
            self._append_lazy(
                frame(RecordType.REQUEUE, REQUEUE_HEAD.pack(index.key(slot), 0, 0.0, 0))
            )
        if chosen:
            _wake(topic, len(chosen))
            await self._journal.flush(sync=True)
        return len(chosen)

    async def _purge_dead(self, topic_name: str) -> int:
        self._check_writable()
        topic = self._index.topic_index(topic_name)
        index = self._index
        doomed = list(topic.dead)
        topic.dead.clear()
        for slot in doomed:
            k = slot * KEY_SIZE
            self._acks += index.keys[k : k + KEY_SIZE]
            index.settle(slot, listed=False)
        if doomed:
            self._frame_acks()
            await self._journal.flush(sync=True)
        return len(doomed)

    async def _purge(self, topic_name: str) -> int:
        self._check_writable()
        topic = self._index.topic_index(topic_name)
        index = self._index
        state = index.state
        count = 0
        for rl in topic.lists.values():
            for slot in rl:
                st = state[slot]
                if st == _READY:
                    k = slot * KEY_SIZE
                    self._acks += index.keys[k : k + KEY_SIZE]
                    index.settle(slot, listed=False)
                    count += 1
                elif st == _ZOMBIE:
                    index.recycle(slot)
        topic.lists.clear()
        topic.order.clear()
        topic.n_ready = 0
        while topic.parked:
            slot, _ = topic.parked.popleft()
            k = slot * KEY_SIZE
            self._acks += index.keys[k : k + KEY_SIZE]
            index.settle(slot, listed=False)
            count += 1
        topic.n_parked = 0
        if topic.n_delayed:
            doomed = set()
            for _, slot in index.delayed.entries():
                if index.topic[slot] == topic.id and state[slot] == _DELAYED:
                    doomed.add(slot)
            index.delayed.remove_slots(doomed)
            for slot in doomed:
                k = slot * KEY_SIZE
                self._acks += index.keys[k : k + KEY_SIZE]
                index.settle(slot, listed=False)
            count += len(doomed)
            topic.n_delayed = 0
        if count:
            self._frame_acks()
            await self._journal.flush(sync=True)
        return count

    def info(self) -> FileQueueInfo:
        """Figures about the directory, the log and the index."""
        numbers = list(self._log.numbers)
        sizes = {}
        for number in numbers:
            try:
                sizes[number] = self._log.file_size(number)
            except OSError:
                sizes[number] = 0
        index = self._index
        return FileQueueInfo(
            directory=str(self.directory),
            format=FORMAT_VERSION,
            fsync=self.fsync,
            read_only=self.read_only,
            segments=len(numbers),
            log_bytes=sum(sizes.values()),
            live_messages=len(index),
            index_bytes=index.nbytes(),
            batches=self._journal.batches,
            records=self._journal.records,
            fsyncs=self._log.syncs,
            corrupt_reads=self.corrupt_reads,
            lock_holder=lock_holder(self.directory) if self.read_only else os.getpid(),
            recovery=self.recovery,
        )

    # ------------------------------------------------------------------ compaction

    async def _compact(self) -> None:
        """Delete segments that hold nothing live; move the few live messages out of an old,
        mostly settled segment so it can go too."""
        if self.read_only or self._compacting:
            return
        self._compacting = True
        self._compact_due = False
        self._index.emptied = False
        try:
            index = self._index
            active = self._active_segment
            sealed = [n for n in list(self._log.numbers) if n != active]
            doomed = []
            for number in sealed:
                if index.seg_live.get(number, 0):
                    break
                doomed.append(number)
            if doomed:
                self._carry_dedup(set(doomed))
                self._frame_acks()
                await self._journal.io(lambda: self._log.delete(doomed))
                return
            # A few long-lived messages (dead letters, far-off delays) must not pin a long
            # log: once three segments are sealed and the oldest is mostly settled, move
            # its survivors to the end so it can go.
            if len(sealed) < 3:
                return
            head = sealed[0]
            if index.seg_bytes.get(head, 0) * 8 > self.segment_size:
                return
            await self._relocate(head)
        finally:
            self._compacting = False

    def _carry_dedup(self, doomed: set[int]) -> None:
        now = self.clock.time()
        carried = []
        for dedup_key, (message_id, expires, segment) in list(self._dedup.items()):
            if segment in doomed and expires > now:
                carried.append([dedup_key, message_id, expires])
                self._dedup[dedup_key] = (message_id, expires, self._active_segment)
        if carried:
            self._append_lazy(frame(RecordType.DEDUP, orjson.dumps(carried)))

    async def _relocate(self, number: int) -> None:
        """Copy the live messages of segment ``number`` to the end of the log."""
        index = self._index

        def candidates() -> list[tuple[int, bytes]]:
            # Runs in the worker thread while the loop keeps changing the index: the check
            # here only thins the list out; every survivor is checked again on the loop.
            data = self._log.read_all(number)
            out = []
            for offset, rtype, start, end in scan(data):
                if rtype != RecordType.MSG:
                    continue
                loc = (number << 32) | offset
                slot = index.find(data[start : start + KEY_SIZE])
                if slot >= 0 and index.loc[slot] == loc:
                    out.append((loc, data[offset:end]))
            return out

        found = await self._journal.io(candidates)
        due_of = {slot: due for due, slot in index.delayed.entries()}
        journal = self._journal
        batch = None
        for loc, record in found:
            key = record[12:28]
            slot = index.find(key)
            if slot < 0 or index.loc[slot] != loc:
                continue
            st = index.state[slot]
            if st not in (_READY, _DELAYED, _LEASED, _DEAD, _PARKED):
                continue
            if st == _PARKED:
                st = _LEASED  # on disk a prefetched message is a leased one
            try:
                _, _, priority, _, max_attempts, _, topic, meta, _, flags = decode_msg(record)
            except ValueError:
                continue
            payload_at = len(record) - _payload_len(record)
            message_meta = meta[:7]
            error = index.errors.get(slot)
            dedup = None
            if flags & HAS_DEDUP and len(meta) > 9:
                dedup = (meta[8], meta[9])
            extra: list[Any] = []
            new_flags = 0
            if error is not None or dedup is not None:
                extra.append(error)
                if error is not None:
                    new_flags |= _codec.HAS_ERROR
            if dedup is not None:
                extra.extend(dedup)
                new_flags |= HAS_DEDUP
            copy = encode_msg(
                key,
                due_of.get(slot, 0.0) if st == _DELAYED else 0.0,
                priority,
                index.attempts[slot],
                max_attempts,
                st,
                topic.encode("ascii"),
                orjson.dumps(message_meta + extra),
                record[payload_at:],
                new_flags,
            )
            if self._acks:
                self._frame_acks()
            # fsync'd whatever the policy: the segment holding the original is deleted next
            batch = journal.add(copy, sync=True)
            batch.posts.append(_Move(slot, key, loc, batch.size - len(copy), len(copy)))
        if batch is not None:
            await journal.wait(batch)


def _payload_len(record: bytes) -> int:
    _, _, _, _, _, _, tlen, mlen = MSG_HEAD.unpack_from(record, FRAME)
    return len(record) - FRAME - MSG_HEAD.size - int(tlen) - int(mlen)


def _wake(topic: TopicIndex, count: int) -> None:
    waiters = topic.waiters
    while count > 0 and waiters:
        waiters.popleft().set()
        count -= 1


def _parse_url(url: str) -> tuple[str, dict[str, str]]:
    if "://" not in url:
        return url, {}
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ConfigError(f"not a file:// URL: {url!r}")
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ConfigError(f"the file:// URL {url!r} names no directory; use file://DIR")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return path, query


def _coerce_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn URL query strings into typed options (keyword arguments pass through)."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(value, str):
            out[name] = value
            continue
        try:
            if name in ("segment_size", "prefetch"):
                out[name] = int(value)
            elif name == "fsync_interval":
                out[name] = float(value)
            elif name == "read_only":
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                out[name] = value.lower() in ("1", "true", "yes")
            else:
                out[name] = value
        except ValueError:
            raise ConfigError(f"option {name}={value!r} in the queue URL is not valid") from None
    return out
