"""Durable workflow runs: run metadata, task states and results, kept so a run can resume.

The :class:`RunStore` interface and the record format every store shares: a run is one
append-only log of records (:mod:`swarm_runtime.backends.file` keeps it as a file of
lines, :mod:`swarm_runtime.backends.redis` as a Redis list). Each line is one record,
``<crc32 hex> <json>\\n``: the first is the run's header (its definition); then a
``session`` record each time it is executed, a ``task`` record each time a task
finishes, and an ``end`` record when a session ends. Records are written by a writer
task in batches, one worker-thread hop and one fsync per batch; a torn last line (a
crash mid-write) is detected by its checksum and cut off when the run is reopened.

A :class:`MemoryRunStore` keeps the same records in memory (``memory://`` queues, and
any queue whose backend keeps no runs of its own).
"""

from __future__ import annotations

import abc
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from anyio.abc import TaskStatus

from .. import _json
from .._logging import get_logger
from ..errors import WorkflowError
from ._durations import RecordedDurations
from .status import WorkflowState

__all__ = [
    "LoadedRun",
    "MemoryRunStore",
    "RunLog",
    "RunStore",
    "RunSummary",
    "decode_lines",
    "encode_record",
    "safe_id",
    "unknown_run",
]

log = get_logger("swarm_runtime.orchestrator")

LOG_NAME = "run.log"
#: acknowledges a batch of queue message ids (``MessageQueue.acknowledge_many``)
Ack = Callable[[list[str]], Awaitable[Any]]


def encode_record(record: dict[str, Any]) -> bytes:
    """One log line: ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``.

    Records hold plain fields and results that already crossed the queue as JSON, so
    orjson's encoding is enough (no second validation pass).
    """
    body = orjson.dumps(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_lines(data: bytes) -> tuple[list[dict[str, Any]], int, int]:
    """Records of a log, the byte length of its valid prefix, and how many bad lines
    were skipped in the middle (a bad *last* line is a torn write, not counted)."""
    records: list[dict[str, Any]] = []
    good_end = 0
    bad = 0
    position = 0
    size = len(data)
    while position < size:
        newline = data.find(b"\n", position)
        if newline < 0:  # no newline: a torn tail
            break
        line = data[position:newline]
        position = newline + 1
        record = _decode_line(line)
        if record is None:
            bad += 1
            continue
        records.append(record)
        good_end = position
    if bad and good_end < position:
        bad -= 1  # the last bad line is the torn tail
    return records, good_end, bad


def _decode_line(line: bytes) -> dict[str, Any] | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = _json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


@dataclass
class LoadedRun:
    """A run read back from its records: the header, the completed tasks and the sessions."""

    run_id: str
    header: dict[str, Any]
    completed: dict[str, dict[str, Any]] = field(default_factory=dict)
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # last record per task
    sessions: int = 0
    state: WorkflowState = WorkflowState.PENDING
    error: str | None = None
    updated_at: float = 0.0

    @classmethod
    def from_records(cls, run_id: str, records: list[dict[str, Any]]) -> LoadedRun:
        if not records or records[0].get("k") != "run":
            raise WorkflowError(f"run {run_id!r} has no header record; its log is damaged")
        header = records[0]
        run = cls(run_id, header, updated_at=float(header.get("created_at", 0.0)))
        for record in records[1:]:
            kind = record.get("k")
            at = record.get("at")
            if isinstance(at, (int, float)):
                run.updated_at = max(run.updated_at, float(at))
            if kind == "task":
                name = str(record.get("name"))
                if name in run.completed:
                    continue  # a result is recorded once: the first one stands
                run.finished[name] = record
                if record.get("state") == "completed":
                    run.completed[name] = record
            elif kind == "session":
                run.sessions += 1
                run.state = WorkflowState.INTERRUPTED  # until an end record says otherwise
                run.error = None
            elif kind == "end":
                run.state = WorkflowState(record.get("state", "interrupted"))
                run.error = record.get("error")
        return run

    def summary(self) -> RunSummary:
        return RunSummary(
            run_id=self.run_id,
            name=str(self.header.get("name", "")),
            fingerprint=str(self.header.get("fingerprint", "")),
            created_at=float(self.header.get("created_at", 0.0)),
            updated_at=self.updated_at,
            state=self.state,
            tasks=len(self.header.get("tasks", ())),
            completed=len(self.completed),
            sessions=self.sessions,
            error=self.error,
        )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line about a stored run (for listings and for finding a run to resume)."""

    run_id: str
    name: str
    fingerprint: str
    created_at: float
    updated_at: float
    state: WorkflowState
    tasks: int
    completed: int
    sessions: int
    error: str | None = None

    @property
    def unfinished(self) -> bool:
        """Never executed to an end (crashed or interrupted): a plain ``run`` resumes it."""
        return self.state is WorkflowState.INTERRUPTED


class RunLog(abc.ABC):
    """The records of one run: appended by the scheduler, made durable in batches."""

    #: True if records survive the process (then result messages are acked only once
    #: the record that holds their result is on disk).
    durable: bool = False

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    @abc.abstractmethod
    def append(self, record: dict[str, Any], ack: str | None = None) -> None:
        """Add a record; ``ack`` is a queue message id to acknowledge once it is durable
        (acknowledged together with the others of the same write)."""

    async def writer(
        self, ack: Ack, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Background task writing appended records in batches (no-op in memory)."""
        task_status.started()

    async def flush(self, ack: Ack | None = None) -> None:  # noqa: B027 - optional hook
        """Make every record appended so far durable."""

    async def close(self, ack: Ack | None = None) -> None:  # noqa: B027 - optional hook
        """Flush and release the log (shielded from cancellation: final bookkeeping)."""


class BufferedRunLog(RunLog):
    """A durable log that buffers what :meth:`append` gets and writes it in batches.

    The :meth:`writer` task (or :meth:`flush`) takes the buffer, stores it in chunks of
    ``batch_size`` records with :meth:`_store_batch` (shielded from cancellation, so a
    session ending mid-write never drops records taken from the buffer; a chunk that
    fails goes back to the buffer with everything after it), then acknowledges the
    result messages those records hold.
    """

    durable = True
    batch_size: int | None = None  # None: one chunk per write

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self._records: list[dict[str, Any]] = []
        self._acks: list[str] = []
        self._wake: anyio.Event | None = None
        self._lock = anyio.Lock()
        self._closed = False

    def append(self, record: dict[str, Any], ack: str | None = None) -> None:
        if self._closed:
            raise WorkflowError(f"the log of run {self.run_id!r} is closed")
        self._records.append(record)
        if ack is not None:
            self._acks.append(ack)
        if self._wake is not None:
            self._wake.set()

    async def _write_loop(self, ack: Ack) -> None:
        """Write whatever is buffered, waiting for more, until cancelled."""
        while True:
            if not self._records and not self._acks:
                self._wake = anyio.Event()
                await self._wake.wait()
                self._wake = None
            await self._write_pending(ack)

    async def _write_pending(self, ack: Ack | None) -> None:
        async with self._lock:
            records, acks = self._records, self._acks
            self._records, self._acks = [], []
            size = self.batch_size or max(1, len(records))
            with anyio.CancelScope(shield=True):
                for start in range(0, len(records), size):
                    try:
                        await self._store_batch(records[start : start + size])
                    except BaseException:
                        self._records[:0] = records[start:]  # retried by the next write
                        self._acks[:0] = acks
                        raise
            if ack is not None and acks:
                try:
                    await ack(acks)  # one batch: one ACK record / one script call
                except BaseException:
                    self._acks[:0] = acks  # acked by the next write or close
                    raise

    @abc.abstractmethod
    async def _store_batch(self, records: list[dict[str, Any]]) -> None:
        """Make ``records`` durable; raise (a :class:`WorkflowError`) if they were not."""

    async def _release(self) -> None:
        """Let go of what the log holds (files, claims) once closed."""

    async def flush(self, ack: Ack | None = None) -> None:
        await self._write_pending(ack)

    async def close(self, ack: Ack | None = None) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._write_pending(ack)
            finally:
                self._closed = True
                await self._release()


class RunStore(abc.ABC):
    """Where runs are kept; one :class:`RunLog` per run."""

    durable: bool = False

    @abc.abstractmethod
    async def create(self, header: dict[str, Any]) -> RunLog:
        """Start a new run's log with its header (durable when this returns)."""

    @abc.abstractmethod
    async def load(self, run_id: str) -> tuple[LoadedRun, RunLog]:
        """Read a run back and reopen its log for appending; :class:`WorkflowError` if unknown."""

    @abc.abstractmethod
    async def list_runs(self) -> list[RunSummary]:
        """Every stored run, oldest first."""

    async def find_unfinished(self, name: str, fingerprint: str | None = None) -> RunSummary | None:
        """The newest run of workflow ``name`` that never reached an end (e.g. it crashed).

        With ``fingerprint``, only a run of the same definition qualifies.
        """
        found = [
            run
            for run in await self.list_runs()
            if run.name == name
            and run.unfinished
            and (fingerprint is None or run.fingerprint == fingerprint)
        ]
        return max(found, key=lambda run: run.updated_at, default=None)

    async def recorded_durations(
        self, name: str, *, exclude: str | None = None, runs: int = 2
    ) -> RecordedDurations:
        """Task durations measured by the newest ``runs`` runs of workflow ``name`` that
        completed tasks (``exclude``: a run id to leave out): the duration estimates a new
        run of the same workflow starts from. Read from the runs' existing task records."""
        found = sorted(
            (
                run
                for run in await self.list_runs()
                if run.name == name and run.run_id != exclude and run.completed
            ),
            key=lambda run: run.updated_at,
        )
        records: list[dict[str, Any]] = []
        for summary in found[-runs:] if runs > 0 else ():
            loaded, _ = await self.load(summary.run_id)  # the log is not written to
            records.extend(loaded.finished.values())
        return RecordedDurations.from_records(records)


# ---------------------------------------------------------------------- memory


class _MemoryRunLog(RunLog):
    def __init__(self, run_id: str, records: list[dict[str, Any]]) -> None:
        super().__init__(run_id)
        self.records = records

    def append(self, record: dict[str, Any], ack: str | None = None) -> None:
        self.records.append(record)


class MemoryRunStore(RunStore):
    """Runs kept in this process only (the default for ``memory://`` queues)."""

    def __init__(self) -> None:
        self._runs: dict[str, list[dict[str, Any]]] = {}

    async def create(self, header: dict[str, Any]) -> RunLog:
        run_id = str(header["run_id"])
        if run_id in self._runs:
            raise WorkflowError(f"a run with id {run_id!r} already exists")
        self._runs[run_id] = [header]
        return _MemoryRunLog(run_id, self._runs[run_id])

    async def load(self, run_id: str) -> tuple[LoadedRun, RunLog]:
        records = self._runs.get(run_id)
        if records is None:
            raise WorkflowError(unknown_run(run_id, self._runs))
        return LoadedRun.from_records(run_id, records), _MemoryRunLog(run_id, records)

    async def list_runs(self) -> list[RunSummary]:
        runs = [
            LoadedRun.from_records(rid, records).summary() for rid, records in self._runs.items()
        ]
        return sorted(runs, key=lambda run: run.created_at)


def safe_id(run_id: str) -> bool:
    return bool(run_id) and all(c.isalnum() or c in "_-" for c in run_id)


def unknown_run(run_id: str, known: Any, where: str | None = None) -> str:
    names = sorted(known)
    place = f" in {where!r}" if where else ""
    listed = ", ".join(names[-5:]) if names else "none"
    return f"no run with id {run_id!r}{place}; known runs: {listed}"
