"""Helpers for the file-queue tests: opening queues, simulating a crash, poking at segments."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

import swarm_runtime as sr
from swarm_runtime.queue.file import FileQueue
from swarm_runtime.queue.file._format import SEGMENT_HEADER, scan
from swarm_runtime.queue.file._snapshot import SNAPSHOT_NAME


async def open_file_queue(path: Path, **options: Any) -> FileQueue:
    queue = await sr.MessageQueue.open(f"file://{path}", **options)
    assert isinstance(queue, FileQueue)
    return queue


def crash_copy(path: Path, target: Path) -> Path:
    """What the directory would hold if the owning process were killed right now.

    A killed process loses nothing that reached the kernel, so the files as they are
    (minus the lock, which dies with the process) are exactly what a restart finds.
    """
    shutil.copytree(path, target)
    (target / "LOCK").unlink(missing_ok=True)
    return target


def segments(path: Path) -> list[Path]:
    return sorted((path / "log").glob("*.seg"))


def drop_snapshot(path: Path) -> None:
    """Force the next open to rebuild from the log, as after a crash."""
    (path / SNAPSHOT_NAME).unlink(missing_ok=True)


def record_offsets(segment: Path) -> list[tuple[int, int, int]]:
    """``(offset, type, end)`` of every valid record in a segment file."""
    data = segment.read_bytes()
    return [(off, rtype, end) for off, rtype, _, end in scan(data) if off >= 0]


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    """XOR one byte of a file in place."""
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ mask]))


async def start_owner(script: str) -> anyio.abc.Process:
    """Start ``python -c script`` and wait until it prints ``ready``."""
    proc = await anyio.open_process(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    seen = b""
    with anyio.fail_after(30):
        while b"ready" not in seen:
            seen += await proc.stdout.receive()
    return proc


__all__ = [
    "SEGMENT_HEADER",
    "append",
    "crash_copy",
    "drop_snapshot",
    "flip",
    "open_file_queue",
    "record_offsets",
    "segments",
    "start_owner",
    "truncate",
]
