"""``FileQueue``: the durable, embedded default backend (``file://DIR``).

One append-only, segmented log per queue directory (see ``queue/README.md`` for the
format), a compact in-memory index rebuilt from it on open, group commit for publishes,
and an exclusive directory lock. Disk work happens in the queue's I/O thread, one trip per
batch. The parts: :mod:`._directory` (format file, lock, opening), :mod:`._journal` (group
commit), :mod:`._delivery` (subscribe, prefetch, reaper), :mod:`._compaction`.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, NoReturn, Self

import anyio
import orjson
from anyio.abc import TaskStatus

from ..._args import bad_argument
from ..._logging import get_logger
from ...clock import Clock
from ...errors import ConfigError, PayloadError, QueueError
from ...message import Message
from .._publishing import PublishBatch
from ..base import (
    MAX_MESSAGE_BYTES,
    NackManyFirst,
    NackOutcome,
    QueueOptions,
    QueueStats,
    split_options,
)
from ._codec import encode_meta, encode_msgs
from ._compaction import CompactionMixin, Move
from ._core import wake
from ._delivery import DeliveryMixin
from ._format import (
    DEAD_HEAD,
    FORMAT_VERSION,
    KEY_SIZE,
    REQUEUE_HEAD,
    RecordType,
    State,
    frame,
    message_key,
)
from ._index import TopicIndex
from ._journal import Batch
from ._options import FileOptions, FsyncPolicy, MiB, parse_url

__all__ = ["FileQueue", "FileQueueInfo"]

log = get_logger("swarm_runtime.queue.file")

_READY = State.READY
_DELAYED = State.DELAYED
_LEASED = State.LEASED
_DEAD = State.DEAD
_ZOMBIE = State.ZOMBIE
_PARKED = State.PARKED

#: a record's limit: the payload's (checked for every backend alike) plus room for its envelope
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES + MiB
_json_dumps = orjson.dumps
_NO_FLAGS = [0]


class _Published:
    """Publishes appended to a journal batch: indexed once the batch is on disk."""

    __slots__ = (
        "dedup_keys",
        "due",
        "end",
        "keys",
        "max_attempts",
        "offset",
        "priority",
        "sizes",
        "state",
        "topic",
        "tracked",
    )

    def __init__(
        self,
        keys: list[bytes],
        offset: int,
        sizes: list[int],
        topic: TopicIndex,
        priority: int,
        max_attempts: int,
        state: int,
        due: float,
        dedup_keys: list[str | None] | None,
        tracked: bool,
    ) -> None:
        self.keys = keys
        self.offset = offset  # of the first record, from the start of the batch
        self.end = offset + sum(sizes)  # just past the last record
        self.sizes = sizes
        self.topic = topic
        self.priority = priority
        self.max_attempts = max_attempts
        self.state = state
        self.due = due
        self.dedup_keys = dedup_keys
        self.tracked = tracked  # the keys are in _inflight


_Staged = tuple[
    bytes,
    list[bytes],
    list[int],
    TopicIndex,
    int,
    int,
    int,
    float,
    "list[str | None] | None",
    "list[str] | None",
    "dict[str, tuple[str, float]] | None",
]
"""A publish batch encoded for the journal but not yet appended to it (see
:meth:`FileQueue._encode`; appending it cannot fail): its records back to back, then the
keys, sizes, topic, priority, attempts limit, state and due time of its messages, their
dedup keys (None if none), the ids to track in ``_inflight`` (ids not made fresh, else
None) and the dedup keys first seen in it (key -> (id, expiry), or None)."""


def _envelope(batch: PublishBatch) -> bytes:
    """The JSON of ``batch``'s envelope (:meth:`PublishBatch.envelope`)."""
    try:
        return _json_dumps(batch.envelope())
    except TypeError as exc:  # orjson.JSONEncodeError included
        where = f"{batch.where[:-1]}: " if batch.where else ""
        raise PayloadError(
            f"{where}the message envelope (sender, headers, ids) is not "
            f"JSON-serialisable: {exc}; use str values",
            path=f"{batch.where}envelope",
        ) from exc


def _too_large(batch: PublishBatch, i: int, size: int) -> NoReturn:
    """Refuse message ``i`` of ``batch``, whose record would be ``size`` bytes."""
    path = batch.payload_path(i)
    raise PayloadError(
        f"{path}: message of {size} bytes with its envelope is larger than the file "
        f"queue's record limit of {MAX_RECORD_BYTES} bytes; keep headers small",
        path=path,
        type_name=type(batch.payloads[i]).__name__,
    )


#: how often the upkeep loop puts back a ``LOCK`` file somebody removed (seconds)
LOCK_CHECK_INTERVAL = 5.0


class FileQueueInfo:
    """Figures about a file queue's directory, log and index (for ``queue stats``)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FileQueue(DeliveryMixin, CompactionMixin, NackManyFirst):
    """A durable queue in a directory: ``file://DIR`` (the default backend).

    Options (keyword arguments, or URL query parameters such as ``file://q?fsync=interval``):

    * ``fsync``: ``"always"`` (default) - ``publish`` returns once its record is fsync'd,
      concurrent publishers sharing one fsync (group commit); ``"interval"`` - records are
      written at once but fsync'd at most every ``fsync_interval`` seconds (a power cut can
      lose that much; a crash of the process loses nothing); ``"never"`` - fsync only at
      close and segment rollover, leaving the rest to the OS.
    * ``fsync_interval``: seconds, for ``fsync="interval"`` (default 0.05).
    * ``segment_size``: bytes per log segment before a new one starts (default 64 MiB).
    * ``prefetch``: while subscribers work, the next ready messages of their topic (up to
      ``max(prefetch, batch_size)``) are leased and read from disk in the background, so
      the next subscribes are served from memory and the disk's latency is hidden (default
      128, 0 to turn off). Their delivery is counted when they are prefetched: a crash
      before they are handed out counts one attempt too many for them (never their last:
      a message whose next delivery is its last is not prefetched).
    * ``read_only``: inspect a queue without taking its lock or changing anything.
    * ``file_mode``: permissions of the files the queue creates (default ``0o600``: payloads
      are readable by their owner only); directories it creates get the same plus search
      (``0o700``). In a URL, octal: ``file://q?file_mode=640``.
    """

    scheme = "file"

    def __init__(
        self,
        directory: str | os.PathLike[str] = "queue",
        *,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 0.05,
        segment_size: int = 64 * MiB,
        prefetch: int = 128,
        read_only: bool = False,
        file_mode: int = 0o600,
        options: QueueOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        file_options = FileOptions(
            fsync, fsync_interval, segment_size, prefetch, read_only, file_mode
        )
        super().__init__(directory, file_options, options=options, clock=clock)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``file://DIR`` (relative), ``file:///abs/dir`` or a plain path; options may also be
        given as query parameters: ``file://queue?fsync=interval&segment_size=8388608``."""
        common, clock, rest = split_options(options)
        path, query = parse_url(url)
        for name, value in query.items():
            if name in rest:
                raise ConfigError(
                    f"option {name!r} is given both in the URL {url!r} and as an argument"
                )
            rest[name] = value
        file_options = FileOptions.from_strings(rest)
        return cls(
            path,
            fsync=file_options.fsync,
            fsync_interval=file_options.fsync_interval,
            segment_size=file_options.segment_size,
            prefetch=file_options.prefetch,
            read_only=file_options.read_only,
            file_mode=file_options.file_mode,
            options=common,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"<FileQueue {str(self.directory)!r} {self._state.value}>"

    async def _open(self) -> None:
        index, report = await anyio.to_thread.run_sync(
            partial(
                self._dir.open,
                now=self.clock.time(),
                default_max_attempts=self.options.max_attempts,
            )
        )
        self._index = index
        if report.active is not None:
            self._active_segment = report.active[0]
        self._journal.start(str(self.directory))
        self.recovery = report
        # Read-only next to a running owner, a half-written last record is just the owner
        # at work, not damage: say so quietly.
        owned = self.read_only and self._dir.holder is not None
        for problem in report.problems:
            if owned:
                log.debug("queue being written by its owner", problem=problem)
            else:
                log.warning("queue recovery", directory=str(self.directory), problem=problem)
        if self.read_only:
            return
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

    async def _close(self) -> None:
        for topic in self._index.topics:
            wake(topic, len(topic.waiters))
        clean = False
        try:
            if not self.read_only:
                await self._journal.flush()  # let prefetch reads under way land...
                await self._journal.drain()
                self._return_parked()  # ...and give every prefetched message back
                self._frame_acks()
                await self._journal.flush(sync=True)
                clean = True
        finally:
            with anyio.CancelScope(shield=True):
                await self._journal.stop()
                if clean:
                    self._settle_leases_for_close()
                snapshot = self._index if clean else None
                await anyio.to_thread.run_sync(self._dir.close, snapshot, self._dedup)

    def _settle_leases_for_close(self) -> None:
        """Unacked leases at close: ready again (first in line, in the order they were
        delivered), or dead if that was the last attempt - what reopening after a crash
        would make of them too."""
        index = self._index
        again = []
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
            else:
                again.append(lease)
        for lease in reversed(again):
            index.state[lease.slot] = _READY
            self._push_front(lease.topic, lease.slot)
            lease.topic.n_ready += 1
        self._leases.clear()
        self._lease_heap.clear()
        self._lease_refs = 0

    async def flush(self) -> None:
        """Write and fsync everything done so far (acks and nacks are otherwise lazy)."""
        self._check_open()
        if self.read_only:
            return
        self._frame_acks()
        await self._journal.flush(sync=True)

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
        woken: dict[TopicIndex, int] = {}
        for post in batch.posts:
            if type(post) is Move:
                slot = index.find(post.key)
                if slot == post.slot and index.loc[slot] == post.old_loc:
                    index.move(slot, base + post.offset, post.size)
                continue
            topic = post.topic
            if post.tracked:
                inflight = self._inflight
                for key in post.keys:
                    del inflight[key]
            slots = index.place_many(
                post.keys,
                base + post.offset,
                post.sizes,
                topic.id,
                post.priority,
                post.max_attempts,
                post.state,
            )
            index.account(segment, len(slots), sum(post.sizes))
            if post.state == _READY:
                priority = post.priority
                rl = topic.lists.get(priority) or topic.ready_list(priority)
                rl.items.extend(slots)
                topic.n_ready += len(slots)
            else:
                push = index.delayed.push
                for slot in slots:
                    push(slot, post.due)
                topic.n_delayed += len(slots)
            woken[topic] = woken.get(topic, 0) + len(slots)
            if post.dedup_keys is not None:
                dedup = self._dedup
                for dedup_key in post.dedup_keys:
                    if dedup_key is not None:
                        seen = dedup.get(dedup_key)
                        if seen is not None:
                            dedup[dedup_key] = (seen[0], seen[1], segment)
        for topic, n in woken.items():
            if topic.waiters:
                wake(topic, n)

    def _on_failed(self, batch: Batch) -> None:
        """A batch could not be written: forget its publishes (their callers get the error)."""
        for post in batch.posts:
            if type(post) is _Published:
                for key in post.keys:
                    self._inflight.pop(key, None)
                if post.dedup_keys is None:
                    continue
                mine = set(post.keys)
                for dedup_key in post.dedup_keys:
                    seen = self._dedup.get(dedup_key) if dedup_key is not None else None
                    if seen is not None and message_key(seen[0]) in mine:
                        del self._dedup[dedup_key]  # type: ignore[arg-type]

    async def _publish(self, batch: PublishBatch) -> list[str]:
        """Stage the batch, then wait for its write and fsync (shared with concurrent
        callers)."""
        out, written = self._stage(batch)
        if written is not None:
            await self._journal.wait(written)
            if (self._compact_due or self._index.emptied) and not self._compacting:
                await self._compact()
        return out

    async def _publish_all(self, batches: list[PublishBatch]) -> list[str]:
        """Encode every batch first (a bad one raises before anything is appended), then
        append them all with no ``await`` in between: one write, one fsync, all or none.

        Plain messages (new ids, no dedup key, ready now) are gathered by topic and
        priority, in order, and each run of them with one attempts limit is encoded as one
        chunk (:meth:`_encode_run`), each message with its own envelope: the scheduler's
        tasks to one agent cost one codec call and one post to index, however they
        interleave with other agents'. Only the order within a topic and priority is
        delivery order, and that is kept; any other message ends the gathering, so it
        keeps its place."""
        pending: dict[str, tuple[str, float]] = {}
        out: list[str] = []
        staged: list[_Staged] = []
        plain: dict[tuple[str, int], list[PublishBatch]] = {}
        for batch in batches:
            if (
                len(batch.ids) == 1
                and batch.fresh
                and batch.dedup_keys is None
                and batch.last_error is None
                and not batch.delay > 0
            ):
                group = plain.get((batch.topic, batch.priority))
                if group is None:
                    plain[batch.topic, batch.priority] = [batch]
                else:
                    group.append(batch)
                out += batch.ids
                continue
            if plain:
                self._encode_plain(plain, staged)
            ids, one = self._encode(batch, pending)
            out += ids
            if one is not None:
                staged.append(one)
                if one[10] is not None:  # its new dedup keys
                    pending.update(one[10])
        if plain:
            self._encode_plain(plain, staged)
        if staged:
            # then wait for every journal batch they went to (one, unless one filled up)
            for written in {id(b): b for b in map(self._append, staged)}.values():
                await self._journal.wait(written)
            if (self._compact_due or self._index.emptied) and not self._compacting:
                await self._compact()
        return out

    def _stage(self, batch: PublishBatch) -> tuple[list[str], Batch | None]:
        """Encode ``batch`` and append it to the open journal batch as one chunk; returns
        the ids to answer and that journal batch (None if every message was a duplicate).
        Batches staged without an ``await`` in between share one write and one fsync."""
        out, staged = self._encode(batch)
        return out, None if staged is None else self._append(staged)

    def _encode(
        self, batch: PublishBatch, pending: dict[str, tuple[str, float]] | None = None
    ) -> tuple[list[str], _Staged | None]:
        """Check and encode every record of ``batch`` without changing the queue (a bad
        one raises, and nothing is kept); returns the ids to answer and what to append
        (None if every message was a duplicate). ``pending``: dedup keys of batches encoded
        before this one in the same call, not yet appended."""
        priority, max_attempts = self._check_stored(batch)
        now = self.clock.time()
        if batch.delay > 0:
            state, due = _DELAYED, now + batch.delay
        else:
            state, due = _READY, 0.0
        envelope = _envelope(batch)
        ids = batch.ids
        bodies = batch.bodies
        keys: list[bytes]
        metas: list[bytes]
        dedup: dict[str, tuple[str, float]] | None = None
        if batch.fresh and batch.dedup_keys is None and batch.last_error is None:
            # the common case: new ids (hex, unique) and one envelope
            tail = b'",' + envelope[1:]
            if len(ids) == 1:
                keys = [bytes.fromhex(ids[0])]
                metas = [b'["' + ids[0].encode() + tail]
                flags = _NO_FLAGS
            else:
                keys = list(map(bytes.fromhex, ids))
                metas = [b'["' + i.encode() + tail for i in ids]
                flags = [0] * len(ids)
            out = ids
            stored = None
        else:
            dedup = {}
            out, stored, keys, metas, flags = self._dedup_batch(
                batch, envelope, now, dedup, pending
            )
            if not stored:
                return out, None
            bodies = [bodies[i] for i in stored]
        topic = self._index.by_name.get(batch.topic) or self._index.topic_index(batch.topic)
        data, sizes = encode_msgs(
            keys, metas, flags, bodies, due, priority, max_attempts, state, topic.ascii
        )
        if (sizes[0] if len(sizes) == 1 else max(sizes)) > MAX_RECORD_BYTES:
            at = sizes.index(max(sizes))
            _too_large(batch, at if stored is None else stored[at], sizes[at])
        dedup_keys = None
        if batch.dedup_keys is not None and stored is not None:
            dedup_keys = [batch.dedup_keys[i] for i in stored]
        tracked = None if batch.fresh else [ids[i] for i in stored or range(len(ids))]
        return out, (
            data,
            keys,
            sizes,
            topic,
            priority,
            max_attempts,
            state,
            due,
            dedup_keys,
            tracked,
            dedup or None,
        )

    def _encode_plain(
        self, plain: dict[tuple[str, int], list[PublishBatch]], staged: list[_Staged]
    ) -> None:
        """Encode the gathered plain messages (see :meth:`_publish_all`) into ``staged``,
        one run per topic, priority and attempts limit in a row; empties ``plain``."""
        encode_run = self._encode_run
        for group in plain.values():
            start = 0
            limit = group[0].max_attempts
            for i, batch in enumerate(group):
                if batch.max_attempts != limit:
                    staged.append(encode_run(group[start:i]))
                    start, limit = i, batch.max_attempts
            staged.append(encode_run(group[start:] if start else group))
        plain.clear()

    def _encode_run(self, run: list[PublishBatch]) -> _Staged:
        """:meth:`_encode` for a run of batches of one plain message each (new id, no dedup
        key, ready now) sharing a topic, priority and attempts limit: one codec call and
        one post, each message keeping its own envelope."""
        first = run[0]
        priority, max_attempts = self._check_stored(first)
        ids = [batch.ids[0] for batch in run]
        metas = [b'["' + batch.ids[0].encode() + b'",' + _envelope(batch)[1:] for batch in run]
        keys = list(map(bytes.fromhex, ids))
        topic = self._index.by_name.get(first.topic) or self._index.topic_index(first.topic)
        data, sizes = encode_msgs(
            keys,
            metas,
            [0] * len(ids),
            [batch.bodies[0] for batch in run],
            0.0,
            priority,
            max_attempts,
            _READY,
            topic.ascii,
        )
        if max(sizes) > MAX_RECORD_BYTES:
            at = sizes.index(max(sizes))
            _too_large(run[at], 0, sizes[at])
        return (data, keys, sizes, topic, priority, max_attempts, _READY, 0.0, None, None, None)

    def _check_stored(self, batch: PublishBatch) -> tuple[int, int]:
        """Refuse what this backend cannot store (a read-only queue, a priority beyond 64
        bits, an attempts limit beyond 32); returns the priority and the attempts limit
        (0 for the queue's default)."""
        if self.read_only:
            self._check_writable()
        priority = batch.priority
        if not -(2**63) <= priority < 2**63:
            raise bad_argument(f"{batch.where}priority", priority, "a signed 64-bit int")
        max_attempts = batch.max_attempts or 0
        if max_attempts > 0xFFFFFFFF:
            raise bad_argument(f"{batch.where}max_attempts", max_attempts, "an int below 2**32")
        return priority, max_attempts

    def _append(self, staged: _Staged) -> Batch:
        """Append an encoded batch to the open journal batch (as one chunk) and record its
        dedup keys and ids; returns that journal batch."""
        data, keys, sizes, topic, priority, max_attempts, state, due, dedup_keys, tracked, dedup = (
            staged
        )
        if self._acks:
            self._frame_acks()
        written = self._journal.add(data, self._sync_publish, records=len(sizes))
        offset = written.size - len(data)
        posts = written.posts
        if posts and dedup_keys is None and tracked is None:
            # Publishes of one topic sharing a write (concurrent callers, a publish_all):
            # extend the last post when these records follow its own, so the batch is
            # indexed in one go.
            last = posts[-1]
            if (
                type(last) is _Published
                and last.end == offset
                and last.topic is topic
                and last.priority == priority
                and last.max_attempts == max_attempts
                and last.state == state
                and last.due == due
                and last.dedup_keys is None
                and not last.tracked
            ):
                last.keys += keys
                last.sizes += sizes
                last.end = written.size
                return written
        posts.append(
            _Published(
                keys,
                offset,
                sizes,
                topic,
                priority,
                max_attempts,
                state,
                due,
                dedup_keys,
                tracked is not None,
            )
        )
        if dedup is not None:
            seen_dedup = self._dedup
            order = self._dedup_order
            for dedup_key, (message_id, expires) in dedup.items():
                seen_dedup[dedup_key] = (message_id, expires, -1)
                heapq.heappush(order, (expires, dedup_key))
        if tracked is not None:
            inflight = self._inflight
            for key, message_id in zip(keys, tracked, strict=True):
                inflight[key] = message_id
        return written

    def _dedup_batch(
        self,
        batch: PublishBatch,
        envelope: bytes,
        now: float,
        fresh_dedup: dict[str, tuple[str, float]],
        pending: dict[str, tuple[str, float]] | None,
    ) -> tuple[list[str], list[int], list[bytes], list[bytes], list[int]]:
        """Which messages of ``batch`` to store (not duplicates: of a dedup key within the
        window, earlier in the batch or in ``pending`` too, or of a stored id); returns the
        ids to answer, the positions to store, and their keys, metas and flags. The new
        dedup keys go into ``fresh_dedup`` (recorded when the batch is appended)."""
        dedup_keys = batch.dedup_keys
        if dedup_keys is not None:
            self._expire_dedup(now)
        window = self.options.dedup_window
        seen_dedup = self._dedup
        inflight = self._inflight
        find = self._index.find
        out: list[str] = []
        stored: list[int] = []
        keys: list[bytes] = []
        metas: list[bytes] = []
        flags: list[int] = []
        mine: dict[bytes, str] = {}
        envelope_tuple = batch.envelope()
        for i, message_id in enumerate(batch.ids):
            dedup_key = None if dedup_keys is None else dedup_keys[i]
            dedup = None
            if dedup_key is not None:
                seen = (
                    seen_dedup.get(dedup_key)
                    or fresh_dedup.get(dedup_key)
                    or (pending.get(dedup_key) if pending else None)
                )
                if seen is not None:
                    out.append(seen[0])
                    continue
                if window > 0:
                    dedup = (dedup_key, now + window)
            key = bytes.fromhex(message_id) if batch.fresh else message_key(message_id)
            if not batch.fresh and (key in mine or key in inflight or find(key) >= 0):
                out.append(message_id)  # already stored (or being stored): idempotent
                continue
            mine[key] = message_id
            if dedup is None and batch.last_error is None:
                meta, flag = _json_dumps((message_id, *envelope_tuple)), 0
            else:
                meta, flag = encode_meta(message_id, envelope_tuple, batch.last_error, dedup)
            if dedup is not None:
                fresh_dedup[dedup[0]] = (message_id, dedup[1])
            out.append(message_id)
            stored.append(i)
            keys.append(key)
            metas.append(meta)
            flags.append(flag)
        return out, stored, keys, metas, flags

    def _expire_dedup(self, now: float) -> None:
        order = self._dedup_order
        while order and order[0][0] <= now:
            _, key = heapq.heappop(order)
            seen = self._dedup.get(key)
            if seen is not None and seen[1] <= now:
                del self._dedup[key]

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
                out = self._hand_out_parked(topic, batch_size, lease, now)
                self._refill(topic, batch_size)
                if out:
                    return out
                continue  # every one of them was unreadable (and reported)
            if topic.prefetching:
                # The next messages are on their way from the disk: wait for them rather
                # than overtake them (a read, like the one any delivery waits for, so even
                # a timeout of 0 waits for it).
                await self._prefetch_landed(topic)
                continue
            slots = self._take(topic, batch_size)
            if slots:
                out = await self._deliver(topic, slots, lease, now)
                self._refill(topic, batch_size)  # read the next ones while the caller works
                return out
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
                    wake(topic, 1)  # pass the wake-up on; we are not taking it
                raise
            finally:
                if not waiter.is_set():
                    try:
                        topic.waiters.remove(waiter)
                    except ValueError:
                        pass

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
        next_lock_check = 0.0
        while self.is_open:
            await anyio.sleep(interval)
            if not self.is_open:
                return
            self._promote(self.clock.time())
            if self.read_only:
                continue
            try:
                if (now := time.monotonic()) >= next_lock_check:
                    next_lock_check = now + LOCK_CHECK_INTERVAL
                    await anyio.to_thread.run_sync(self._dir.lock.verify)
                if self._acks or self._journal.pending:
                    self._frame_acks()
                    await self._journal.flush(sync=False)
                if self.fsync == "interval":
                    await self._journal.flush(sync=True)
                if not self._compacting:
                    await self._compact()
            except (QueueError, OSError) as exc:
                if not self.is_open:
                    return
                log.error("queue upkeep failed", directory=str(self.directory), error=str(exc))

    async def _ack(self, message_id: str) -> bool:
        self._check_writable()
        return self._settle(message_id)

    async def _ack_many(self, message_ids: Sequence[str]) -> int:
        """Settle them all in memory, and frame their keys as one ACK record at once (a
        crash keeps all of it or none of it); it is written lazily, like single acks."""
        self._check_writable()
        leases = self._leases
        leased: list[int] = []
        settled = 0
        for message_id in message_ids:
            lease = leases.pop(message_id, None)
            if lease is not None:
                lease.topic.n_leased -= 1
                leased.append(lease.slot)
            else:
                settled += self._settle(message_id)
        if leased:
            self._acks += self._index.settle_many(leased)
        self._frame_acks()
        return settled + len(leased)

    def _settle(self, message_id: str) -> bool:
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

    async def _nack_many(
        self, message_ids: Sequence[str], delay: float, error: str | None, dead_letter: bool
    ) -> list[NackOutcome]:
        """Settle them all in memory, and append their REQUEUE / DEAD records as one chunk
        (one write: a crash keeps all of them or none); written lazily, like acks."""
        self._check_writable()
        leases = self._leases
        index = self._index
        default_limit = self.options.max_attempts
        due = self.clock.time() + delay if delay > 0 else 0.0
        tail = b"" if error is None else error.encode("utf-8", "replace")
        has_error = error is not None
        records: list[bytes] = []
        woken: dict[TopicIndex, int] = {}
        outcomes: list[NackOutcome] = []
        for message_id in message_ids:
            lease = leases.pop(message_id, None)
            if lease is None:
                outcomes.append("unknown")
                continue
            slot = lease.slot
            topic = lease.topic
            topic.n_leased -= 1
            if error is not None:
                index.errors[slot] = error
            attempts = index.attempts[slot]
            if dead_letter or attempts >= (index.max_attempts[slot] or default_limit):
                why = index.errors.get(slot) or ("dead-lettered" if dead_letter else "nacked")
                self._kill(topic, slot, why, records)
                outcomes.append("dead_lettered")
                continue
            if due:
                index.state[slot] = _DELAYED
                index.delayed.push(slot, due)
                topic.n_delayed += 1
            else:
                self._make_ready(topic, slot)
            woken[topic] = woken.get(topic, 0) + 1
            records.append(
                frame(
                    RecordType.REQUEUE,
                    REQUEUE_HEAD.pack(index.key(slot), attempts, due, has_error) + tail,
                )
            )
            outcomes.append("requeued")
        if records:
            self._append_lazy(b"".join(records), len(records))
        # a waiting subscriber takes a requeued message, or re-arms its timer for a delayed one
        for topic, count in woken.items():
            wake(topic, count)
        return outcomes

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
        wake(topic, 1)
        return True

    async def _extend(self, message_id: str, lease: float) -> bool:
        self._check_writable()
        current = self._leases.get(message_id)
        now = self.clock.time()
        if current is None or current.deadline <= now:
            return False
        current.deadline = now + lease
        self._track_leases(current.deadline, (message_id,))
        return True

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
        await self._prefetch_landed(topic)
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
            wake(topic, len(chosen))
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
        await self._prefetch_landed(topic)
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
        sizes = dict(self._log.sizes)  # kept by the I/O thread: no stat on the event loop
        index = self._index
        return FileQueueInfo(
            directory=str(self.directory),
            format=FORMAT_VERSION,
            fsync=self.fsync,
            read_only=self.read_only,
            segments=len(sizes),
            log_bytes=sum(sizes.values()),
            live_messages=len(index),
            index_bytes=index.nbytes(),
            batches=self._journal.batches,
            records=self._journal.records,
            fsyncs=self._log.syncs,
            corrupt_reads=self.corrupt_reads,
            lock_holder=self._dir.holder,
            recovery=self.recovery,
        )
