"""Confining built-in sources and sinks to one directory (``run --base-dir DIR``).

A pipeline file names the paths its sources read and its sinks write; someone running a
pipeline they did not write can confine those paths to a directory. While a base directory
is set (a context variable, so it follows the pipeline's tasks and threads), every file
path a built-in agent's params name is resolved against it, symlinks followed, and a path
that lands outside it is refused (a config error at validation, naming the field).
User agents (``uses: module:callable``) are code and are not confined: trust them or
leave them out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = ["base_dir", "confine", "confined_to"]

_BASE_DIR: ContextVar[Path | None] = ContextVar("swarm_runtime_base_dir", default=None)


def base_dir() -> Path | None:
    """The directory built-in file paths are confined to now (None: not confined)."""
    return _BASE_DIR.get()


@contextmanager
def confined_to(directory: str | os.PathLike[str] | None) -> Iterator[None]:
    """Confine built-in sources and sinks to ``directory`` inside the block (None: no change)."""
    if directory is None:
        yield
        return
    token = _BASE_DIR.set(Path(directory).resolve())
    try:
        yield
    finally:
        _BASE_DIR.reset(token)


def confine(path: str) -> str:
    """``path`` as given when not confined; else resolved against the base directory and
    refused (``ValueError``, a config error for the field) if it lands outside it."""
    base = _BASE_DIR.get()
    if base is None:
        return path
    resolved = (base / path).resolve()
    if not resolved.is_relative_to(base):
        raise ValueError(
            f"{path!r} is outside the base directory {str(base)!r} that sources and sinks are "
            "confined to (--base-dir)"
        )
    return str(resolved)
