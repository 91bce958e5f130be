"""Atomic file writes: a temp file in the target directory, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import DataError

__all__ = ["atomic_write", "atomic_write_with"]

T = TypeVar("T")


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part.

    Parent directories are created. Returns the absolute path written. An OS error
    becomes :class:`DataError` naming the path; the temp file is removed.
    """

    def write(tmp: Path) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    return atomic_write_with(path, write)[0]


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], T]) -> tuple[Path, T]:
    """Like :func:`atomic_write`, with ``write(tmp_path)`` producing the file's content.

    ``write`` creates the temp file (a library writer such as Polars' ``sink_ipc``);
    its return value is handed back with the absolute path once the file is fsync'd
    and renamed into place. An existing file keeps its permission bits; a read-only one
    (no write permission for its owner, or none for this user) is never replaced.
    """
    target = Path(path).absolute()
    mode = _replaceable_mode(target)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        value = write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        fd = os.open(tmp, os.O_RDONLY)
        try:
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
    return target, value


def _replaceable_mode(target: Path) -> int | None:
    """The permission bits of an existing ``target`` (None if there is none); a
    :class:`DataError` if it is read-only, which a rename would silently get around."""
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _write_error(target, exc) from exc
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"cannot write {str(target)!r}: it is a directory")
    if not info.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        raise DataError(
            f"cannot write {str(target)!r}: the file is read-only (mode "
            f"{oct(stat.S_IMODE(info.st_mode))}); make it writable or choose another path"
        )
    return stat.S_IMODE(info.st_mode)


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
