"""The segment files of one queue directory. Blocking code: call it from a worker thread.

Appends go to the newest ("active") segment in batches; a batch never straddles two
segments. Reads use ``pread`` on per-segment descriptors, coalescing neighbouring records
into one system call.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

from ._format import SEGMENT_HEADER, encode_segment_header, is_sealed, seal_record

__all__ = ["Log", "fsync_directory", "segment_name"]

SEGMENT_SUFFIX = ".seg"

_datasync = getattr(os, "fdatasync", os.fsync)


def segment_name(number: int) -> str:
    return f"{number:012d}{SEGMENT_SUFFIX}"


def fsync_directory(path: Path) -> None:
    """Make a created, renamed or deleted directory entry durable."""
    if sys.platform == "win32":  # pragma: no cover - directories cannot be fsync'd there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Log:
    """Append-only, segmented log files under ``DIR/log``."""

    def __init__(
        self,
        directory: Path,
        segment_size: int,
        *,
        read_only: bool = False,
        file_mode: int = 0o600,
    ) -> None:
        self.directory = directory
        self.file_mode = file_mode
        self.segment_size = segment_size
        self.read_only = read_only
        self.numbers: list[int] = []  # existing segments, oldest first
        self.sizes: dict[int, int] = {}  # segment -> bytes, kept up to date by this class
        self.active = 0  # number of the segment appends go to (0: none yet)
        self.active_size = 0
        self._write_fd: int | None = None
        self._crc = 0  # CRC-32 of the active segment's bytes, for its SEAL record
        self._read_fds: dict[int, int] = {}
        self.bytes_written = 0
        self.syncs = 0

    # ------------------------------------------------------------------ discovery

    def discover(self) -> list[int]:
        """Segment numbers on disk, oldest first (also remembered in ``numbers``)."""
        numbers = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.endswith(SEGMENT_SUFFIX) and name[: -len(SEGMENT_SUFFIX)].isdigit():
                    numbers.append(int(name[: -len(SEGMENT_SUFFIX)]))
        numbers.sort()
        self.numbers = numbers
        self.sizes = {number: self.file_size(number) for number in numbers}
        return numbers

    def path(self, number: int) -> Path:
        return self.directory / segment_name(number)

    def read_all(self, number: int) -> bytes:
        with open(self.path(number), "rb") as f:
            return f.read()

    def file_size(self, number: int) -> int:
        return os.stat(self.path(number)).st_size

    # ------------------------------------------------------------------ writing

    def open_active(self, number: int, size: int, crc: int | None = None) -> None:
        """Append to existing segment ``number`` from ``size`` on (after recovery).

        ``crc`` is the CRC-32 of its first ``size`` bytes (computed here if not given). A
        segment that is already sealed is left alone: the next append starts a new one.
        """
        if crc is None:
            with open(self.path(number), "rb") as f:
                data = f.read(size)
            if is_sealed(data):
                return
            crc = zlib.crc32(data)
        fd = os.open(self.path(number), os.O_WRONLY)
        self._write_fd = fd
        self._crc = crc
        self.active = number
        self.active_size = size

    def truncate(self, number: int, size: int) -> None:
        """Cut segment ``number`` to ``size`` bytes (a torn tail) and make that durable."""
        fd = os.open(self.path(number), os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.sizes[number] = size

    def new_segment(self) -> int:
        """Seal the active segment and start the next one; returns its number."""
        if self._write_fd is not None:
            seal = seal_record(self._crc)
            self._write_all(self._write_fd, memoryview(seal), self.active_size)
            self.active_size += len(seal)
            self.sizes[self.active] = self.active_size
            _datasync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = None
        number = (self.numbers[-1] if self.numbers else 0) + 1
        path = self.path(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.file_mode)
        header = encode_segment_header(number)
        try:
            self._write_all(fd, memoryview(header), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        fsync_directory(self.directory)
        self._write_fd = fd
        self._crc = zlib.crc32(header)
        self.numbers.append(number)
        self.active = number
        self.active_size = SEGMENT_HEADER
        self.sizes[number] = SEGMENT_HEADER
        return number

    def append(self, chunks: Sequence[bytes], size: int, sync: bool) -> tuple[int, int]:
        """Write one batch (``size`` bytes in ``chunks``); fsync it if ``sync``.

        Returns ``(segment, offset)`` of the batch's first byte. On error the segment is
        cut back to where the batch began, so the log stays readable.
        """
        if self._write_fd is None or (
            self.active_size > SEGMENT_HEADER and self.active_size + size > self.segment_size
        ):
            self.new_segment()
        fd = self._write_fd
        assert fd is not None
        start = self.active_size
        try:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self._write_all(fd, memoryview(data), start)
            if sync:
                _datasync(fd)
                self.syncs += 1
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
        self._crc = zlib.crc32(data, self._crc)
        self.active_size = start + size
        self.sizes[self.active] = self.active_size
        self.bytes_written += size
        return self.active, start

    def sync(self) -> None:
        if self._write_fd is not None:
            _datasync(self._write_fd)
            self.syncs += 1

    def _write_all(self, fd: int, view: memoryview, offset: int) -> None:
        while view:
            written = self._write(fd, view, offset)
            view = view[written:]
            offset += written

    @staticmethod
    def _write(fd: int, view: memoryview, offset: int) -> int:
        """One positioned write (``pwrite``): appends never depend on a file position."""
        return os.pwrite(fd, view, offset)

    # ------------------------------------------------------------------ reading

    def _reader(self, number: int) -> int:
        fd = self._read_fds.get(number)
        if fd is None:
            fd = self._read_fds[number] = os.open(self.path(number), os.O_RDONLY)
        return fd

    def read(self, requests: Sequence[tuple[int, int]]) -> list[bytes]:
        """Read records given as ``(loc, size)`` (``loc`` = segment << 32 | offset).

        Neighbouring records are fetched with one ``pread``. Results are in request order;
        a record that cannot be read (segment gone, file short) comes back as ``b""``.
        """
        order = sorted(range(len(requests)), key=lambda i: requests[i][0])
        out: list[bytes] = [b""] * len(requests)
        i = 0
        while i < len(order):
            first_loc, first_size = requests[order[i]]
            number = first_loc >> 32
            start = first_loc & 0xFFFFFFFF
            end = start + first_size
            j = i + 1
            while j < len(order):
                loc, size = requests[order[j]]
                if loc >> 32 != number or (loc & 0xFFFFFFFF) > end + 4096:
                    break
                end = max(end, (loc & 0xFFFFFFFF) + size)
                j += 1
            try:
                blob = os.pread(self._reader(number), end - start, start)
            except (FileNotFoundError, OSError):
                blob = b""
            for k in range(i, j):
                loc, size = requests[order[k]]
                offset = (loc & 0xFFFFFFFF) - start
                out[order[k]] = blob[offset : offset + size]
            i = j
        return out

    # ------------------------------------------------------------------ compaction

    def delete(self, numbers: Sequence[int]) -> None:
        """Delete whole segments (never the active one) and make that durable."""
        for number in numbers:
            if number == self.active:
                continue
            fd = self._read_fds.pop(number, None)
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(number))
            with contextlib.suppress(ValueError):
                self.numbers.remove(number)
            self.sizes.pop(number, None)
        fsync_directory(self.directory)

    def close(self) -> None:
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                _datasync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = None
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
