"""Group commit: records gathered into batches, one worker-thread hop (write + fsync) per batch.

Records are appended to the *open* batch. The first task that has to wait for a batch
becomes its leader: once the previous batch is on disk it takes the open batch, writes it
(and fsyncs it if any record asked for that) in a worker thread, and wakes everyone in the
batch. Meanwhile new records gather in the next open batch, so concurrent publishers share
one fsync. Records nobody waits for (acks, leases) ride along with the next batch that is
written, or with any other trip to the worker thread (:meth:`Journal.io`).

There is no background task: whoever needs the disk drives it, so a queue opened and
closed in different tasks works.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar

import anyio

from ...errors import QueueError, QueueFullError
from ._log import Log

__all__ = ["Batch", "FsyncPolicy", "Journal"]

T = TypeVar("T")

FsyncPolicy = Literal["always", "interval", "never"]

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


class Job(Generic[T]):
    """Blocking work (reads, deletes) run in the worker thread right after a batch's write."""

    __slots__ = ("error", "fn", "result")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # re-raised on the event loop by Journal.io
            self.error = exc


class Batch:
    """Records written together: one ``write`` (and at most one fsync)."""

    __slots__ = (
        "chunks",
        "done",
        "error",
        "jobs",
        "lazy",
        "leader",
        "posts",
        "segment",
        "size",
        "start",
        "sync",
        "wake",
    )

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lazy: list[int] = []  # indexes of chunks nobody waits for (acks, leases...)
        self.size = 0
        self.sync = False
        self.posts: list[Any] = []  # what the queue does once the batch is on disk
        self.jobs: list[Job[Any]] = []  # other blocking work for the same worker-thread hop
        self.done = False
        self.error: BaseException | None = None
        self.leader = False
        self.wake = anyio.Event()
        self.segment = 0
        self.start = 0


class Journal:
    """The write path of a file queue: batching, group commit and the fsync policy."""

    def __init__(
        self,
        log: Log,
        *,
        policy: FsyncPolicy,
        interval: float,
        on_written: Callable[[Batch], None],
        on_failed: Callable[[Batch], None],
    ) -> None:
        self.log = log
        self.policy = policy
        self.interval = interval
        self._on_written = on_written
        self._on_failed = on_failed
        self._open = Batch()
        self._busy = False
        self._idle = anyio.Event()
        self._idle.set()
        self._unsynced = False
        self._last_sync = time.monotonic()
        self.batches = 0
        self.records = 0

    # ------------------------------------------------------------------ appending

    @property
    def open_batch(self) -> Batch:
        return self._open

    @property
    def pending(self) -> int:
        """Bytes appended but not yet written."""
        return self._open.size

    @property
    def quiet(self) -> bool:
        """Nothing waiting to be written and no worker-thread hop under way."""
        return not self._busy and not self._open.size and not self._open.jobs

    def add(self, record: bytes, sync: bool = False, lazy: bool = False) -> Batch:
        """Append a framed record to the open batch; returns that batch."""
        batch = self._open
        if lazy:
            batch.lazy.append(len(batch.chunks))
        batch.chunks.append(record)
        batch.size += len(record)
        if sync:
            batch.sync = True
        return batch

    # ------------------------------------------------------------------ waiting

    async def wait(self, batch: Batch, *, raise_error: bool = True) -> None:
        """Return once ``batch`` is written (and fsync'd if it asked for it).

        Raises the batch's error (e.g. :class:`QueueFullError`) if writing it failed,
        unless ``raise_error`` is false (the caller's records will be retried).
        """
        while not batch.done:
            if batch.leader:
                await batch.wake.wait()
                continue
            batch.leader = True
            try:
                while self._busy:
                    await self._idle.wait()
                if not batch.done:
                    await self._flush()
            except BaseException:
                if not batch.done:  # hand the lead to another waiter of the batch
                    batch.leader = False
                    wake, batch.wake = batch.wake, anyio.Event()
                    wake.set()
                raise
        if batch.error is not None and raise_error:
            raise batch.error

    async def io(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the worker thread, in the hop that writes the open batch.

        Concurrent callers (and publishers) share that hop: a consumer's read rides along
        with the publishers' write instead of queueing behind it.
        """
        batch = self._open
        job = Job(fn)
        batch.jobs.append(job)
        await self.wait(batch, raise_error=False)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    async def flush(self, *, sync: bool = False) -> None:
        """Write everything appended so far (and fsync it if ``sync``)."""
        if sync and (self._open.size or self._unsynced):
            self._open.sync = True
        if self._open.size or self._open.sync or self._open.jobs:
            await self.wait(self._open)

    async def drain(self) -> None:
        """Return once no worker-thread hop is running (before closing the files)."""
        while self._busy:
            await self._idle.wait()

    # ------------------------------------------------------------------ the worker-thread hop

    def _sync_due(self, batch: Batch) -> bool:
        if batch.sync:
            return True
        if self.policy == "interval" and (batch.size or self._unsynced):
            return time.monotonic() - self._last_sync >= self.interval
        return False

    async def _flush(self) -> None:
        batch = self._open
        self._open = Batch()
        self._busy = True
        idle = self._idle = anyio.Event()
        try:
            sync = self._sync_due(batch)
            position, write_error = await anyio.to_thread.run_sync(self._hop, batch, sync)
            # Bookkeeping below runs without a checkpoint, so a cancellation delivered
            # after the hop cannot leave the batch half applied.
            if write_error is None:
                if batch.size and position is not None:
                    batch.segment, batch.start = position
                    self.batches += 1
                    self.records += len(batch.chunks)
                if sync:
                    self._unsynced = False
                    self._last_sync = time.monotonic()
                elif batch.size:
                    self._unsynced = True
                self._on_written(batch)
            else:
                batch.error = _translate(write_error)
                self._requeue_lazy(batch)
                self._on_failed(batch)
            batch.done = True
            batch.wake.set()
        finally:
            self._busy = False
            idle.set()

    def _hop(self, batch: Batch, sync: bool) -> tuple[tuple[int, int] | None, OSError | None]:
        position = None
        write_error = None
        try:
            if batch.size:
                position = self.log.append(batch.chunks, batch.size, sync)
            elif sync:
                self.log.sync()
        except OSError as exc:
            write_error = exc
        for job in batch.jobs:
            job.run()
        return position, write_error

    def _requeue_lazy(self, failed: Batch) -> None:
        """Records nobody waited for (acks, leases...) are written with the next batch.

        They go after whatever was appended since; that only matters for a message whose
        state changed twice within one failed write, and then only by one attempt count.
        """
        for i in failed.lazy:
            self.add(failed.chunks[i], lazy=True)


def _translate(exc: OSError) -> QueueError:
    if exc.errno in _FULL:
        error: QueueError = QueueFullError(
            f"the disk holding the queue is full ({exc.strerror}); nothing was stored and the "
            "log is intact: free some space and publish again"
        )
    else:
        error = QueueError(
            f"writing the queue log failed ({exc.strerror or exc}); nothing was stored"
        )
    error.__cause__ = exc
    return error
