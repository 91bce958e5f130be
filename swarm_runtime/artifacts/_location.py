"""Which artifact store a pipeline's tables go to: a configured directory, or the backend's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from .store import ArtifactStore, DirectoryArtifactStore

if TYPE_CHECKING:
    from ..backends import Backend

__all__ = ["ArtifactLocation", "directory_store"]


def _path(location: str) -> DirectoryArtifactStore:
    return DirectoryArtifactStore(location)


def _file_url(location: str) -> DirectoryArtifactStore:
    parts = urlsplit(location)
    return DirectoryArtifactStore(unquote(parts.netloc + parts.path))


#: artifact location URL scheme ("" for a plain path) → the store it names
_LOCATIONS: dict[str, Callable[[str], DirectoryArtifactStore]] = {"": _path, "file": _file_url}


def directory_store(location: str) -> DirectoryArtifactStore:
    """The store in directory ``location`` (a path or a ``file://`` URL)."""
    kind, *_ = urlsplit(location)
    opener = _LOCATIONS.get(kind)
    if opener is not None:
        return opener(location)
    raise ConfigError(
        f"artifacts location {location!r}: only a directory (a path or file://PATH; on "
        "redis:// one every worker mounts) is supported"
    )


class ArtifactLocation:
    """Where a pipeline's table artifacts go: ``location`` (the pipeline's
    ``artifacts.location`` or ``--artifacts``) if given, else the backend's own store
    (:meth:`Backend.artifact_store`), resolved when the first table is written."""

    def __init__(self, location: str | None = None) -> None:
        self.location = location
        self._store: ArtifactStore | None = None
        self._lock = threading.Lock()
        if location is not None:
            self._store = directory_store(location)  # a bad location fails now

    def store_for(self, backend: Backend) -> ArtifactStore:
        """The store for tables of runs on ``backend`` (ConfigError if it has none)."""
        with self._lock:
            if self._store is None:
                self._store = backend.artifact_store(self.location)
            return self._store
