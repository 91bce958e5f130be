"""State and small helpers shared by every part of the file queue.

:class:`FileQueueCore` holds the queue's state (index, journal, leases, dedup keys, the
ack buffer); :mod:`._delivery`, :mod:`._compaction` and :mod:`._queue` add behaviour on top.
"""

from __future__ import annotations

import abc
import itertools
import os
from pathlib import Path

from ...clock import Clock
from ...errors import QueueError
from ..base import MessageQueue, QueueOptions
from ._directory import QueueDirectory
from ._format import DEAD_HEAD, RecordType, State, frame
from ._index import Index, TopicIndex
from ._journal import Batch, Journal
from ._options import FileOptions
from ._recovery import RecoveryReport

__all__ = ["FileQueueCore", "Lease", "wake"]

_READY = State.READY
_DEAD = State.DEAD


class Lease:
    """A delivered message's lease: which slot, which topic, until when."""

    __slots__ = ("deadline", "slot", "topic")

    def __init__(self, slot: int, topic: TopicIndex, deadline: float) -> None:
        self.slot = slot
        self.topic = topic
        self.deadline = deadline


def wake(topic: TopicIndex, count: int) -> None:
    """Wake up to ``count`` subscribers waiting on ``topic``."""
    waiters = topic.waiters
    while count > 0 and waiters:
        waiters.popleft().set()
        count -= 1


class FileQueueCore(MessageQueue):
    """The file queue's state; see :class:`~swarm_runtime.queue.file.FileQueue`."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        file_options: FileOptions,
        *,
        options: QueueOptions | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(options=options, clock=clock)
        self.directory = Path(os.fspath(directory)).expanduser()
        self.file_options = file_options
        self.fsync = file_options.fsync
        self.fsync_interval = float(file_options.fsync_interval)
        self.segment_size = file_options.segment_size
        self.prefetch = file_options.prefetch
        self.read_only = bool(file_options.read_only)
        self.recovery: RecoveryReport | None = None
        self._dir = QueueDirectory(
            self.directory,
            self.segment_size,
            read_only=self.read_only,
            file_mode=file_options.file_mode,
            directory_mode=file_options.directory_mode,
        )
        self._log = self._dir.log
        self._index = Index()
        self._journal = Journal(
            self._log,
            policy=self.fsync,
            interval=self.fsync_interval,
            on_written=self._on_written,
            on_failed=self._on_failed,
        )
        self._sync_publish = self.fsync == "always"
        self._leases: dict[str, Lease] = {}
        self._lease_heap: list[tuple[float, int, tuple[str, ...]]] = []
        self._lease_refs = 0  # ids referenced by the heap, live or not
        self._lease_seq = itertools.count()
        self._inflight: dict[bytes, str] = {}  # key -> id of publishes not yet on disk
        self._dedup: dict[str, tuple[str, float, int]] = {}  # key -> (id, expires, segment)
        self._dedup_order: list[tuple[float, str]] = []
        self._acks = bytearray()  # keys acknowledged since the last ACK record
        self._active_segment = 0
        self._compacting = False
        self._compact_due = False
        self._relocation_tried: dict[int, float] = {}  # segment -> when (monotonic)
        self.corrupt_reads = 0

    @abc.abstractmethod
    def _on_written(self, batch: Batch) -> None:
        """A batch reached the disk."""

    @abc.abstractmethod
    def _on_failed(self, batch: Batch) -> None:
        """A batch could not be written."""

    def _check_writable(self) -> None:
        if self.read_only:
            raise QueueError(
                f"the queue at {str(self.directory)!r} is open read-only (for inspection); "
                "open it without read_only to change it"
            )

    @property
    def unwritten(self) -> bool:
        """True while some record (an ack, a lease...) has not reached the log yet."""
        return bool(self._acks) or not self._journal.quiet

    def _frame_acks(self) -> None:
        if self._acks:
            self._journal.add(frame(RecordType.ACK, self._acks), lazy=True)
            self._acks = bytearray()

    def _append_lazy(self, record: bytes, records: int = 1) -> Batch:
        """Append a state record nobody needs to wait for (it rides with the next batch);
        ``records`` framed back to back are one chunk, written whole or not at all."""
        if self._acks:
            self._frame_acks()  # keep the log in the order things happened
        return self._journal.add(record, lazy=True, records=records)

    def _make_ready(self, topic: TopicIndex, slot: int) -> None:
        index = self._index
        index.state[slot] = _READY
        topic.ready_list(index.prio[slot]).items.append(slot)
        topic.n_ready += 1

    def _kill(
        self, topic: TopicIndex, slot: int, error: str, records: list[bytes] | None = None
    ) -> None:
        """Dead-letter a slot; its DEAD record is appended lazily, or to ``records`` (a
        batch the caller appends as one chunk)."""
        index = self._index
        index.state[slot] = _DEAD
        index.errors[slot] = error
        topic.dead[slot] = None
        record = frame(
            RecordType.DEAD,
            DEAD_HEAD.pack(index.key(slot), index.attempts[slot])
            + error.encode("utf-8", "replace"),
        )
        if records is None:
            self._append_lazy(record)
        else:
            records.append(record)

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
