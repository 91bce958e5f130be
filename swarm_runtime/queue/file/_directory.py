"""The queue directory: its format file, its lock, and getting an index out of it at open.

Blocking code, run in a worker thread. Opening checks the format version, takes the lock,
then loads the index from the clean-close snapshot when it matches the log byte for byte,
or rebuilds it from the log (see :mod:`._recovery`). Closing writes the snapshot.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from ..._logging import get_logger
from ...errors import ConfigError, QueueError, QueueFormatError
from ._format import FORMAT_VERSION
from ._index import Index
from ._lock import DirectoryLock, lock_holder
from ._log import Log, fsync_directory
from ._recovery import RecoveryReport, recover
from ._snapshot import discard_snapshot, load_snapshot, save_snapshot

__all__ = ["FORMAT_FILE", "LOG_DIR", "QueueDirectory"]

FORMAT_FILE = "FORMAT"
#: what may stand in an empty directory that is about to become a queue
_ALLOWED_EXTRAS = frozenset({"README", "README.md", "README.txt", "LOCK", "runs"})
LOG_DIR = "log"

log = get_logger("swarm_runtime.queue.file")


class QueueDirectory:
    """Everything about one queue directory that is not the log's contents."""

    def __init__(
        self,
        path: Path,
        segment_size: int,
        *,
        read_only: bool,
        file_mode: int = 0o600,
        directory_mode: int = 0o700,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self.file_mode = file_mode
        self.directory_mode = directory_mode
        self.log = Log(path / LOG_DIR, segment_size, read_only=read_only, file_mode=file_mode)
        self.lock = DirectoryLock(path, file_mode=file_mode)
        #: pid of the process owning the queue, as seen at open (None: nobody, read-only)
        self.holder: int | None = None

    # ------------------------------------------------------------------ opening

    def open(self, *, now: float, default_max_attempts: int) -> tuple[Index, RecoveryReport]:
        """Lock the directory (unless read-only) and load its index."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"queue path {str(path)!r} exists and is not a directory")
        if self.read_only:
            if not (path / FORMAT_FILE).exists() and not (path / LOG_DIR).is_dir():
                raise QueueError(
                    f"no queue at {str(path)!r} (no {FORMAT_FILE} file, no log): check the path"
                )
            self._check_format()
            self.holder = lock_holder(path)
        else:
            try:
                path.mkdir(parents=True, exist_ok=True, mode=self.directory_mode)
            except OSError as exc:
                raise QueueError(
                    f"cannot create the queue directory {str(path)!r}: {exc.strerror}"
                ) from exc
            self._check_format()
            self._refuse_foreign_directory()
            self.lock.acquire()
            self.holder = os.getpid()
        try:
            if not self.read_only:
                (path / LOG_DIR).mkdir(exist_ok=True, mode=self.directory_mode)
                if not (path / FORMAT_FILE).exists():
                    self._write_format()
            index, report = self._load_index(now, default_max_attempts)
            if not self.read_only:
                if report.discard:
                    self.log.delete(report.discard)
                    report.active = None
                    if self.log.numbers:
                        last = self.log.numbers[-1]
                        report.active = (last, self.log.sizes[last])
                if report.active is not None:
                    number, size = report.active
                    self.log.open_active(number, size, report.active_crc)
            return index, report
        except BaseException:
            self.log.close()
            self.lock.release()
            raise

    def _load_index(self, now: float, default_max_attempts: int) -> tuple[Index, RecoveryReport]:
        """The index from the clean-close snapshot if it matches the log, else from the log."""
        started = time.perf_counter()
        numbers = self.log.discover()
        sizes = dict(self.log.sizes)
        index, dedup, note = load_snapshot(self.path, sizes)
        if not self.read_only:
            discard_snapshot(self.path)  # from here on the log moves past it
        if index is not None:
            report = RecoveryReport(
                segments=len(numbers), from_snapshot=True, messages=len(index), dedup=dedup
            )
            if numbers:
                report.active = (numbers[-1], sizes[numbers[-1]])
            report.elapsed = time.perf_counter() - started
            return index, report
        index = Index()
        report = recover(
            self.log,
            index,
            now=now,
            default_max_attempts=default_max_attempts,
            read_only=self.read_only,
        )
        report.snapshot_note = note
        return index, report

    def _refuse_foreign_directory(self) -> None:
        """Refuse to turn a directory holding other files into a queue.

        A queue directory has a ``FORMAT`` file or a ``log/`` directory; an empty one (or
        one with only a README or dot files, like the repository's ``queue/``) becomes one.
        Anything else is somebody's data: writing ``FORMAT``, ``LOCK`` and ``log/`` into it
        would be a surprise at best.
        """
        path = self.path
        if (path / FORMAT_FILE).exists() or (path / LOG_DIR).is_dir():
            return
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise QueueError(f"cannot list the queue directory {str(path)!r}: {exc}") from exc
        foreign = [n for n in names if not n.startswith(".") and n not in _ALLOWED_EXTRAS]
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise ConfigError(
                f"{str(path)!r} is not a queue directory and is not empty (it holds {shown}); "
                "give the file queue a new or empty directory"
            )

    def _check_format(self) -> None:
        path = self.path / FORMAT_FILE
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
                f"{str(self.path)!r} really a queue directory?"
            ) from exc
        if version > FORMAT_VERSION:
            raise QueueFormatError(
                f"queue directory {str(self.path)!r} was written by queue format version "
                f"{version}; this swarm-runtime reads version {FORMAT_VERSION}: upgrade "
                "swarm-runtime to open it"
            )
        if version < 1:
            raise QueueFormatError(
                f"{str(path)!r} names format version {version}, which never existed"
            )

    def _write_format(self) -> None:
        path = self.path / FORMAT_FILE
        tmp = path.with_suffix(".tmp")
        data = orjson.dumps(
            {
                "format": FORMAT_VERSION,
                "kind": "swarm-runtime file queue",
                "created_at": time.time(),
            },
            option=orjson.OPT_INDENT_2,
        )
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
        with open(fd, "wb") as f:
            f.write(data + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_directory(self.path)

    # ------------------------------------------------------------------ closing

    def close(self, index: Index | None, dedup: dict[str, tuple[str, float, int]]) -> None:
        """Close the log, write the snapshot of ``index`` (a clean close) and unlock."""
        try:
            self.log.close()
            if index is not None and not self.read_only:
                sizes = {n: self.log.file_size(n) for n in self.log.discover()}
                try:
                    save_snapshot(self.path, index, sizes, dedup, file_mode=self.file_mode)
                except OSError as exc:
                    log.warning(
                        "could not write the index snapshot; the next open will scan the log",
                        directory=str(self.path),
                        error=str(exc),
                    )
                    discard_snapshot(self.path)
        finally:
            self.lock.release()
