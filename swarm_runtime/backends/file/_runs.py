"""Workflow runs on disk, beside a ``file://`` queue: ``DIR/<run_id>/run.log``.

For a ``file://`` queue ``DIR`` is ``<queue dir>/runs``. Each run is one append-only log
of checksummed lines (the format of :mod:`swarm_runtime.orchestrator._runstore`): the
header first, then ``session``, ``task`` and ``end`` records. Records are written by a
writer task in batches, one worker-thread hop and one fsync per batch; a torn last line (a
crash mid-write) is detected by its checksum and cut off when the run is reopened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from anyio.abc import TaskStatus

from ..._logging import get_logger
from ...errors import WorkflowError
from ...orchestrator._runstore import (
    LOG_NAME,
    Ack,
    BufferedRunLog,
    LoadedRun,
    RunLog,
    RunStore,
    RunSummary,
    decode_lines,
    encode_record,
    safe_id,
    unknown_run,
)
from ...queue.file._log import fsync_directory

__all__ = ["DirectoryRunStore"]

log = get_logger("swarm_runtime.orchestrator")


class _FileRunLog(BufferedRunLog):
    def __init__(self, run_id: str, path: Path, valid_size: int | None = None) -> None:
        super().__init__(run_id)
        self.path = path
        self._valid_size = valid_size  # cut the file to this many bytes before appending
        self._file: BinaryIO | None = None

    async def writer(
        self, ack: Ack, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await self._write_loop(ack)

    async def _store_batch(self, records: list[dict[str, Any]]) -> None:
        try:
            await anyio.to_thread.run_sync(self._write_sync, records)
        except OSError as exc:
            raise WorkflowError(
                f"cannot write the log of run {self.run_id!r} at {str(self.path)!r}: "
                f"{exc.strerror or exc}"
            ) from exc

    def _write_sync(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(encode_record(record) for record in records)
        file = self._file
        if file is None:
            file = self._file = _open_append(self.path, self._valid_size)
        file.write(data)
        file.flush()
        _datasync(file.fileno())

    async def _release(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await anyio.to_thread.run_sync(file.close)


_datasync = getattr(os, "fdatasync", os.fsync)


def _open_append(path: Path, valid_size: int | None) -> BinaryIO:
    """Open a run log for appending, first cutting off a torn tail."""
    file = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115 - kept open
    try:
        if valid_size is not None and os.fstat(file.fileno()).st_size > valid_size:
            file.truncate(valid_size)
            _datasync(file.fileno())
        file.seek(0, os.SEEK_END)
    except BaseException:
        file.close()
        raise
    return file


class DirectoryRunStore(RunStore):
    """Runs kept on disk under ``directory`` (``<queue dir>/runs`` for a file queue)."""

    durable = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _log_path(self, run_id: str) -> Path:
        return self.directory / run_id / LOG_NAME

    async def create(self, header: dict[str, Any]) -> RunLog:
        run_id = str(header["run_id"])
        path = self._log_path(run_id)
        data = encode_record(header)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=False)
            with open(path, "xb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            fsync_directory(path.parent)
            fsync_directory(path.parent.parent)

        try:
            await anyio.to_thread.run_sync(write)
        except FileExistsError:
            raise WorkflowError(f"a run with id {run_id!r} already exists") from None
        except OSError as exc:
            raise WorkflowError(
                f"cannot create the run directory {str(path.parent)!r}: {exc.strerror or exc}"
            ) from exc
        return _FileRunLog(run_id, path, len(data))

    async def load(self, run_id: str) -> tuple[LoadedRun, RunLog]:
        path = self._log_path(run_id)
        if not safe_id(run_id) or not path.exists():
            known = [s.run_id for s in await self.list_runs()]
            raise WorkflowError(unknown_run(run_id, known, where=str(self.directory)))
        try:
            data = await anyio.to_thread.run_sync(path.read_bytes)
        except OSError as exc:
            raise WorkflowError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
        records, valid, bad = decode_lines(data)
        if bad:
            log.warning("run log has damaged records; skipped", run_id=run_id, damaged=bad)
        if valid < len(data):
            log.info("run log had a torn tail; cut off", run_id=run_id, bytes=len(data) - valid)
        return LoadedRun.from_records(run_id, records), _FileRunLog(run_id, path, valid)

    async def list_runs(self) -> list[RunSummary]:
        def scan() -> list[RunSummary]:
            out: list[RunSummary] = []
            for path in _run_logs(self.directory):
                try:
                    records, _, _ = decode_lines(path.read_bytes())
                    out.append(LoadedRun.from_records(path.parent.name, records).summary())
                except (OSError, WorkflowError):
                    continue
            return sorted(out, key=lambda run: run.created_at)

        return await anyio.to_thread.run_sync(scan)


def _run_logs(directory: Path) -> Iterator[Path]:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            if entry.is_dir() and safe_id(entry.name):
                path = Path(entry.path) / LOG_NAME
                if path.is_file():
                    yield path
