"""One owner per queue directory: an exclusive OS lock on ``DIR/LOCK`` naming its holder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from ...errors import QueueError, QueueLockedError

__all__ = ["DirectoryLock", "lock_holder"]

LOCK_NAME = "LOCK"


def lock_holder(directory: Path) -> int | None:
    """The pid of the process that holds the directory's lock, or None if it is free."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


class DirectoryLock:
    """An exclusive ``flock`` on ``DIR/LOCK``, held while a queue is open for writing.

    The lock dies with its process (even under ``kill -9``), so a crashed owner never
    leaves a stale lock behind; the pid written into the file is only for the message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    def acquire(self) -> None:
        path = self.directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise QueueError(f"cannot create the lock file {str(path)!r}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise QueueLockedError(str(self.directory), pid) from exc
            raise QueueError(f"cannot lock {str(path)!r}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock
