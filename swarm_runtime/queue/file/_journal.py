"""Group commit: records gathered into batches, one worker-thread trip (write + fsync) each.

Records are appended to the *open* batch. When somebody has to wait for a batch and no
write is under way, the open batch is handed to the queue's I/O thread, which writes it
(and fsyncs it if any record asked for that) and runs the reads and deletes that were
attached to it. Meanwhile new records gather in the next open batch, so concurrent
publishers share one fsync. Records nobody waits for (acks, leases) ride along with the
next batch that is written.

The hand-over is chained: the moment a batch is on disk, the completion callback (on the
event loop) indexes it and, if anyone waits for the open batch, submits that at once,
before the woken publishers take their turns. Submitting through ``anyio.to_thread``
instead costs two passes over every ready task before the thread even starts (it
checkpoints twice first), which halves throughput under 64 concurrent publishers.

There is no background task: whoever needs the disk drives it, so a queue opened and
closed in different tasks works. The I/O thread belongs to the queue: started at open,
joined at close.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, TypeVar

import anyio

from ..._logging import get_logger
from ...errors import QueueError, QueueFullError
from ._log import Log
from ._options import FsyncPolicy

__all__ = ["Batch", "Journal"]

T = TypeVar("T")

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}

log = get_logger("swarm_runtime.queue.file")


class Job(Generic[T]):
    """Blocking work (reads, deletes) run in the I/O thread right after a batch's write.

    ``on_done``, if given, is called with the job on the event loop once the trip is over
    (before the batch's waiters wake): work nobody waits for, such as a prefetch.
    """

    __slots__ = ("error", "fn", "on_done", "result")

    def __init__(
        self, fn: Callable[[], T], on_done: Callable[[Job[T]], None] | None = None
    ) -> None:
        self.fn = fn
        self.on_done = on_done
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
        "posts",
        "records",
        "segment",
        "size",
        "start",
        "sync",
        "waiters",
        "woken",
    )

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lazy: list[int] = []  # indexes of chunks nobody waits for (acks, leases...)
        self.size = 0
        self.records = 0
        self.sync = False
        self.posts: list[Any] = []  # what the queue does once the batch is on disk
        self.jobs: list[Job[Any]] = []  # other blocking work for the same trip
        self.done = False
        self.error: BaseException | None = None
        self.waiters = 0
        self.woken: list[asyncio.Future[None]] = []  # one per waiting caller
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
        self._submitting = False  # a _submit_soon is scheduled
        self._idle = asyncio.Event()
        self._idle.set()
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.batches = 0
        self.records = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, name: str) -> None:
        """Start the I/O thread (on the event loop that will use the queue)."""
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"swarm-queue-io {name}")

    async def stop(self) -> None:
        """Wait for the trip under way, then join the I/O thread."""
        await self.drain()
        executor, self._executor = self._executor, None
        if executor is not None:
            await anyio.to_thread.run_sync(executor.shutdown)

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
        """Nothing waiting to be written and no trip to the I/O thread under way."""
        return not self._busy and not self._open.size and not self._open.jobs

    def add(
        self, record: bytes, sync: bool = False, lazy: bool = False, *, records: int = 1
    ) -> Batch:
        """Append a framed record (or ``records`` of them back to back) to the open batch;
        returns that batch."""
        batch = self._open
        if lazy:
            batch.lazy.append(len(batch.chunks))
        batch.chunks.append(record)
        batch.size += len(record)
        batch.records += records
        if sync:
            batch.sync = True
        return batch

    # ------------------------------------------------------------------ waiting

    async def wait(self, batch: Batch, *, raise_error: bool = True) -> None:
        """Return once ``batch`` is written (and fsync'd if it asked for it).

        Raises the batch's error (e.g. :class:`QueueFullError`) if writing it failed,
        unless ``raise_error`` is false (the caller's records will be retried). A
        cancelled waiter leaves the batch to be written all the same.
        """
        if not batch.done:
            batch.waiters += 1
            if not self._busy and not self._submitting:
                if self._executor is None:
                    raise _not_running()
                # Not under way: submit the open batch once the callers that are ready to
                # run have run (publishers woken together by the last write join this one,
                # instead of the first going alone while the rest form the next batch).
                self._submitting = True
                asyncio.get_running_loop().call_soon(self._submit_soon)
            # a future per caller, not an Event: nothing to remove from a list on wake-up,
            # and a cancelled caller cancels only its own future
            woken = asyncio.get_running_loop().create_future()
            batch.woken.append(woken)
            await woken
        if batch.error is not None and raise_error:
            raise batch.error

    async def io(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the I/O thread, in the trip that writes the open batch.

        Concurrent callers (and publishers) share that trip: a consumer's read rides along
        with the publishers' write instead of queueing behind it.
        """
        batch = self._open
        job = Job(fn)
        batch.jobs.append(job)
        await self.wait(batch, raise_error=False)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def start_job(self, fn: Callable[[], T], on_done: Callable[[Job[T]], None]) -> None:
        """Run ``fn`` in the I/O thread with the next trip, without waiting for it."""
        self._open.jobs.append(Job(fn, on_done))
        if not self._busy and self._executor is not None:
            self._submit()

    async def flush(self, *, sync: bool = False) -> None:
        """Write everything appended so far (and fsync it if ``sync``)."""
        if sync and (self._open.size or self._unsynced):
            self._open.sync = True
        if self._open.size or self._open.sync or self._open.jobs:
            await self.wait(self._open)

    async def drain(self) -> None:
        """Return once no trip to the I/O thread is under way (before closing the files)."""
        while self._busy:
            await self._idle.wait()

    # ------------------------------------------------------------------ the I/O thread

    def _sync_due(self, batch: Batch) -> bool:
        if batch.sync:
            return True
        if self.policy == "interval" and (batch.size or self._unsynced):
            return time.monotonic() - self._last_sync >= self.interval
        return False

    def _submit_soon(self) -> None:
        """Submit the open batch if nothing is under way (a trip under way submits it when
        it completes) and somebody waits for it."""
        self._submitting = False
        batch = self._open
        if self._busy or not (batch.waiters or batch.jobs):
            return
        if self._executor is not None:
            self._submit()
            return
        # closed meanwhile: tell the waiters rather than leave them hanging
        self._open = Batch()
        batch.error = _not_running()
        batch.done = True
        for woken in batch.woken:
            if not woken.done():
                woken.set_result(None)

    def _submit(self) -> None:
        """Hand the open batch to the I/O thread (event-loop thread, never blocks)."""
        executor = self._executor
        if executor is None:
            raise _not_running()
        batch = self._open
        self._open = Batch()
        self._busy = True
        self._idle.clear()
        sync = self._sync_due(batch)
        future = executor.submit(self._trip, batch, sync)
        future.add_done_callback(partial(self._notify, batch, sync))

    def _notify(self, batch: Batch, sync: bool, future: Future[Any]) -> None:
        """In the I/O thread: hand the result back to the event loop."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._complete, batch, sync, future)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass

    def _trip(self, batch: Batch, sync: bool) -> tuple[tuple[int, int] | None, OSError | None]:
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

    def _complete(self, batch: Batch, sync: bool, future: Future[Any]) -> None:
        """On the event loop: account for a written batch and start the next one."""
        try:
            try:
                position, write_error = future.result()
            except BaseException as exc:  # the trip itself failed (a bug, MemoryError...)
                position, write_error = None, exc
            if write_error is None:
                if batch.size and position is not None:
                    batch.segment, batch.start = position
                    self.batches += 1
                    self.records += batch.records
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
            for job in batch.jobs:
                if job.on_done is not None:
                    job.on_done(job)
        except BaseException as exc:  # never leave waiters hanging
            log.error("queue batch bookkeeping failed", error=repr(exc))
            batch.error = QueueError(f"internal error after writing a batch: {exc!r}")
            batch.error.__cause__ = exc
        finally:
            batch.done = True
            self._busy = False
            nxt = self._open
            if (nxt.waiters or nxt.jobs) and self._executor is not None:
                self._submit()  # chained: before the publishers woken below run
            else:
                self._idle.set()
            for woken in batch.woken:
                if not woken.done():
                    woken.set_result(None)

    def _requeue_lazy(self, failed: Batch) -> None:
        """Records nobody waited for (acks, leases...) are written with the next batch.

        They go after whatever was appended since; that only matters for a message whose
        state changed twice within one failed write, and then only by one attempt count.
        """
        for i in failed.lazy:
            self.add(failed.chunks[i], lazy=True)


def _not_running() -> QueueError:
    return QueueError("the queue's I/O thread is not running (the queue is closed)")


def _translate(exc: BaseException) -> QueueError:
    if isinstance(exc, OSError) and exc.errno in _FULL:
        error: QueueError = QueueFullError(
            f"the disk holding the queue is full ({exc.strerror}); nothing was stored and the "
            "log is intact: free some space and publish again"
        )
    elif isinstance(exc, OSError):
        error = QueueError(
            f"writing the queue log failed ({exc.strerror or exc}); nothing was stored"
        )
    else:
        error = QueueError(f"writing the queue log failed ({exc!r}); nothing was stored")
    error.__cause__ = exc
    return error
