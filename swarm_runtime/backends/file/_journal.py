"""``file://DIR`` LLM step journal: ``DIR/llm/<run_id>.log``, one checksummed record a line.

The log uses the run store's building blocks: the record encoding (``<crc32> <json>``),
its decoder (a torn last line is cut off on reopen) and :class:`BufferedRunLog`'s writer
(one worker-thread hop and one fsync per batch; concurrent writes, such as the results of
parallel tool calls, share an fsync).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import anyio

from ..._logging import get_logger
from ...errors import LLMError
from ...llm.journal import Record, RunJournal, StepJournal
from ...orchestrator._runstore import decode_lines, safe_id
from ...queue.file._log import fsync_directory
from ._runs import _FileRunLog

__all__ = ["FileStepJournal"]

log = get_logger("swarm_runtime.llm")


class _FileRunJournal(RunJournal):
    def __init__(
        self, run_id: str, records: dict[int, Record], writer: _FileRunLog, claim: BinaryIO
    ) -> None:
        super().__init__(run_id, records)
        self._log = writer
        self._claim = claim  # holds the run's flock until closed (the OS drops it on a crash)

    async def write(self, *records: Record) -> None:
        for record in records:
            self._log.append(record)
        await self._log.flush()

    async def aclose(self) -> None:
        try:
            await self._log.close()
        finally:
            self._claim.close()


class FileStepJournal(StepJournal):
    """Runs journaled under ``directory/llm`` (durable; one process per run at a time)."""

    durable = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory) / "llm"

    async def open(self, run_id: str) -> RunJournal:
        if not safe_id(run_id):
            raise LLMError(f"run id {run_id!r} may hold only letters, digits, '_' and '-'")
        path = self.directory / f"{run_id}.log"

        def read() -> tuple[bytes, BinaryIO]:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                fsync_directory(path.parent)
            claim = open(path, "rb")  # noqa: SIM115 - kept open while the run executes
            try:
                _claim(claim, run_id)
                return claim.read(), claim
            except BaseException:
                claim.close()
                raise

        try:
            data, claim = await anyio.to_thread.run_sync(read)
        except OSError as exc:
            raise LLMError(f"cannot open the journal {str(path)!r}: {exc.strerror or exc}") from exc
        decoded, valid, bad = decode_lines(data)
        if bad:
            log.warning("journal has damaged records; skipped", run_id=run_id, damaged=bad)
        records: dict[int, Record] = {}
        for record in decoded:
            step = record.get("step")
            if isinstance(step, int):
                records.setdefault(step, record)
        return _FileRunJournal(run_id, records, _FileRunLog(run_id, path, valid), claim)


def _claim(file: BinaryIO, run_id: str) -> None:
    """Take the run's exclusive lock, or LLMError if another process (or task) runs it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: no claim
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LLMError(
            f"run {run_id!r} is being executed elsewhere (its journal is locked); wait for it "
            "to end, or resume it once that process has stopped"
        ) from None
