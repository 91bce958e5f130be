"""The LLM step journal: every model answer and tool result of a run, by (run_id, step).

A :class:`StepJournal` is one of a backend's stores; :meth:`StepJournal.open` gives a run's
:class:`RunJournal`: the records already written (to replay) and :meth:`RunJournal.write`,
which returns only once the record is durable (file: fsync'd; redis: acknowledged by the
server). A record is written once: the first one for a step stands.

Each backend hands out its own (``Backend.step_journal()``): :class:`MemoryStepJournal`
here (``memory://``: this process only), ``backends.file``'s (``file://DIR``: one
append-only checksummed log per run) and ``backends.redis``'s (one hash per run, shared by
every process).
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any, Self

from ..errors import LLMError

__all__ = ["MemoryStepJournal", "RunJournal", "StepJournal", "open_step_journal"]

Record = dict[str, Any]


class RunJournal(abc.ABC):
    """One run's journal: the records found when it was opened, and durable appends."""

    def __init__(self, run_id: str, records: dict[int, Record]) -> None:
        self.run_id = run_id
        #: Records by step, as found when the journal was opened.
        self.records = records

    @abc.abstractmethod
    async def write(self, *records: Record) -> None:
        """Store ``records`` (each holds its ``step``); all durable when this returns."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the journal holds (files)."""


class StepJournal(abc.ABC):
    """Where LLM runs are journaled (one of a backend's stores)."""

    #: Records survive the process (and, if ``shared``, are seen by other processes).
    durable: bool = False
    shared: bool = False

    @abc.abstractmethod
    async def open(self, run_id: str) -> RunJournal:
        """The journal of run ``run_id`` (empty if the run is new). While it is open, the run
        is claimed: opening it again elsewhere raises :class:`LLMError` (file: an flock the
        OS drops if the process dies; memory: this process; redis: not claimed)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _MemoryRunJournal(RunJournal):
    def __init__(self, run_id: str, stored: dict[int, Record], active: set[str]) -> None:
        super().__init__(run_id, dict(stored))
        self._stored = stored
        self._active = active

    async def aclose(self) -> None:
        self._active.discard(self.run_id)

    async def write(self, *records: Record) -> None:
        for record in records:
            self._stored.setdefault(int(record["step"]), record)


class MemoryStepJournal(StepJournal):
    """Runs journaled in this process (a resumed run must use the same journal object)."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[int, Record]] = {}
        self._active: set[str] = set()

    async def open(self, run_id: str) -> RunJournal:
        if run_id in self._active:
            raise LLMError(f"run {run_id!r} is being executed already; wait for it to end")
        self._active.add(run_id)
        return _MemoryRunJournal(run_id, self._runs.setdefault(run_id, {}), self._active)


def open_step_journal(url: str) -> StepJournal:
    """The step journal of the backend for ``url`` (``memory://``, ``file://DIR``,
    ``redis://HOST:PORT/DB``), without opening that backend's queue."""
    from ..backends import Backend

    return Backend.step_journal_at(url)
