"""Atomic file writes: a temp file in the target directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from ...errors import DataError

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part.

    Parent directories are created. Returns the absolute path written. An OS error
    becomes :class:`DataError` naming the path; the temp file is removed.
    """
    target = Path(path).absolute()
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise _write_error(target, exc) from exc
        raise
    _fsync_directory(target.parent)
    return target


def _write_error(target: Path, exc: OSError) -> DataError:
    return DataError(f"cannot write {str(target)!r}: {exc.strerror or exc}")


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
