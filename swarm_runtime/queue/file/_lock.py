"""One owner per queue directory: an exclusive OS lock on the directory itself.

The lock is an ``flock`` on the queue directory's own descriptor. A lock on a file inside
it (the first design) could be defeated by unlinking the file: a second opener created a
new ``LOCK``, locked that, and two processes wrote the same log. A directory cannot be
unlinked while it holds files, and replacing it (``mv``) leaves the owner locking the
directory it really writes to, so the lock means what it says.

``DIR/LOCK`` still holds the owner's pid, only so that errors and ``queue stats`` can name
the holder; it is locked too, so that an older swarm-runtime, which locks only that file,
is kept out as well.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from ...errors import QueueError, QueueLockedError

__all__ = ["DirectoryLock", "lock_holder"]

LOCK_NAME = "LOCK"


def lock_holder(directory: Path) -> int | None:
    """The pid of the process that owns the directory, or None if it is free."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(directory / LOCK_NAME) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text("ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DirectoryLock:
    """An exclusive ``flock`` on the queue directory, held while it is open for writing.

    The lock dies with its process (even under ``kill -9``), so a crashed owner never
    leaves a stale lock behind.
    """

    def __init__(self, directory: Path, *, file_mode: int = 0o600) -> None:
        self.directory = directory
        self.file_mode = file_mode
        self._dir_fd: int | None = None
        self._file_fd: int | None = None

    def acquire(self) -> None:
        try:
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise QueueError(f"cannot open {str(self.directory)!r}: {exc.strerror}") from exc
        try:
            _lock(dir_fd, self.directory, lambda: _pid_in(self.directory / LOCK_NAME))
            file_fd = self._lock_file()
        except BaseException:
            os.close(dir_fd)
            raise
        self._dir_fd, self._file_fd = dir_fd, file_fd

    def _lock_file(self) -> int:
        path = self.directory / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, self.file_mode)
        except OSError as exc:
            raise QueueError(f"cannot create the lock file {str(path)!r}: {exc.strerror}") from exc
        try:
            _lock(fd, self.directory, lambda: _read_pid(fd))
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def verify(self) -> None:
        """Put ``DIR/LOCK`` back if somebody removed or replaced it (the pid is for messages)."""
        fd = self._file_fd
        if fd is None:
            return
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(self.directory / LOCK_NAME))
        except FileNotFoundError:
            same = False
        if not same:
            self._file_fd = None
            os.close(fd)
            self._file_fd = self._lock_file()

    def release(self) -> None:
        fd, self._file_fd = self._file_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)
        dir_fd, self._dir_fd = self._dir_fd, None
        if dir_fd is not None:
            os.close(dir_fd)  # closing the descriptor drops the flock


def _lock(fd: int, directory: Path, holder: Callable[[], int | None]) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise QueueLockedError(str(directory), holder()) from exc
        raise QueueError(f"cannot lock {str(directory)!r}: {exc.strerror}") from exc


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
