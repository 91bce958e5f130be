"""Artifact stores: where table results are written once and read, verified, downstream.

An :class:`ArtifactStore` keeps the tables of each run under the run's id. A table is
written atomically (a temp file, fsync, rename) in the Arrow IPC format, its SHA-256
taken, and an :class:`ArtifactRef` returned; the file's name is unique per write, so a
task run twice (a retry, a duplicate delivery) never replaces a file another result
points to. Reading goes through :func:`open_table`, which checks the size and the
checksum first: a torn or altered artifact raises :class:`ArtifactError`, never
returns wrong rows.

* :class:`DirectoryArtifactStore`: a directory (``<queue dir>/artifacts`` on
  ``file://``, a shared directory every worker mounts on ``redis://``).
* :class:`MemoryArtifactStore`: in-process, for ``memory://``.

Every method is synchronous and does disk or CPU work: call it in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import threading
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import polars as pl

from .._atomic import atomic_write_with
from ..errors import ArtifactError, ConfigError
from ._convert import polars_error
from ._ref import ArtifactRef, is_artifact_ref

__all__ = [
    "ArtifactStore",
    "DirectoryArtifactStore",
    "MemoryArtifactStore",
    "broken_artifacts",
    "open_table",
    "preview_table",
    "verify_artifact",
]

Frame = pl.DataFrame | pl.LazyFrame
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1 << 20


def _safe(name: str) -> str:
    """A file-name-safe form of a run id or task name."""
    return _SAFE.sub("_", name).strip("._")[:80] or "table"


def _describe(frame: pl.LazyFrame | pl.DataFrame) -> tuple[tuple[str, str], ...]:
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    return tuple((name, str(dtype)) for name, dtype in schema.items())


class ArtifactStore(ABC):
    """Where a run's table artifacts live. ``location`` says where, for people."""

    location: str

    @abstractmethod
    def write_table(self, table: Frame, *, run: str, name: str) -> ArtifactRef:
        """Write ``table`` (a lazy frame is streamed) as an artifact of run ``run``."""

    @abstractmethod
    def runs(self) -> list[str]:
        """The run ids that have artifacts here."""

    @abstractmethod
    def delete_run(self, run: str) -> int:
        """Remove every artifact of ``run``; returns the bytes freed."""

    def run_size(self, run: str) -> int:
        """Bytes held by the artifacts of ``run``."""
        return 0


# ---------------------------------------------------------------------- directory


class DirectoryArtifactStore(ArtifactStore):
    """Artifacts as files ``ROOT/<run>/<task>.<unique>.arrow``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.location = str(self.root)

    def write_table(self, table: Frame, *, run: str, name: str) -> ArtifactRef:
        target = self.root / _safe(run) / f"{_safe(name)}.{uuid.uuid4().hex[:12]}.arrow"

        def write(tmp: Path) -> None:
            if isinstance(table, pl.LazyFrame):
                table.sink_ipc(tmp, compression="lz4")
            else:
                table.write_ipc(tmp, compression="lz4")

        try:
            path, _ = atomic_write_with(target, write)
        except pl.exceptions.PolarsError as exc:
            raise polars_error(f"the table of {name!r}", exc) from exc
        checksum = _file_checksum(path)
        scan = pl.scan_ipc(path)
        rows = int(scan.select(pl.len()).collect().item())
        return ArtifactRef(
            uri=path.as_uri(),
            rows=rows,
            schema=_describe(scan),
            checksum=checksum,
            size=path.stat().st_size,
        )

    def runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def run_size(self, run: str) -> int:
        directory = self.root / _safe(run)
        return sum(p.stat().st_size for p in _files(directory))

    def delete_run(self, run: str) -> int:
        directory = self.root / _safe(run)
        freed = self.run_size(run)
        shutil.rmtree(directory, ignore_errors=True)
        return freed


def _files(directory: Path) -> Iterator[Path]:
    if directory.is_dir():
        yield from (p for p in directory.iterdir() if p.is_file())


def _file_checksum(path: Path) -> str:
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


# ---------------------------------------------------------------------- memory

_MEMORY: weakref.WeakValueDictionary[str, MemoryArtifactStore] = weakref.WeakValueDictionary()


class MemoryArtifactStore(ArtifactStore):
    """Artifacts held in this process (``memory://<store>/<run>/<task>.<unique>``)."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.location = f"memory://{self.id}"
        self._tables: dict[str, bytes] = {}
        self._lock = threading.Lock()
        _MEMORY[self.id] = self

    def write_table(self, table: Frame, *, run: str, name: str) -> ArtifactRef:
        frame = table.collect() if isinstance(table, pl.LazyFrame) else table
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        data = buffer.getvalue()
        uri = f"{self.location}/{_safe(run)}/{_safe(name)}.{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._tables[uri] = data
        return ArtifactRef(
            uri=uri,
            rows=frame.height,
            schema=_describe(frame),
            checksum="sha256:" + hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    def get(self, uri: str) -> bytes | None:
        with self._lock:
            return self._tables.get(uri)

    def runs(self) -> list[str]:
        with self._lock:
            return sorted({uri[len(self.location) + 1 :].split("/", 1)[0] for uri in self._tables})

    def _uris(self, run: str) -> list[str]:
        prefix = f"{self.location}/{_safe(run)}/"
        return [uri for uri in self._tables if uri.startswith(prefix)]

    def run_size(self, run: str) -> int:
        with self._lock:
            return sum(len(self._tables[uri]) for uri in self._uris(run))

    def delete_run(self, run: str) -> int:
        with self._lock:
            uris = self._uris(run)
            freed = sum(len(self._tables.pop(uri)) for uri in uris)
        return freed


# ---------------------------------------------------------------------- reading

_verified: dict[tuple[str, int, int, str], None] = {}
_verified_lock = threading.Lock()


def _local_path(ref: ArtifactRef) -> Path:
    parts = urlsplit(ref.uri)
    return Path(unquote(parts.path))


def _memory_bytes(ref: ArtifactRef) -> bytes:
    store_id = urlsplit(ref.uri).netloc
    store = _MEMORY.get(store_id)
    data = store.get(ref.uri) if store is not None else None
    if data is None:
        raise ArtifactError(
            f"artifact {ref.uri} is gone: it was held in the memory of a process (memory://) "
            "that no longer has it; run the pipeline again",
            uri=ref.uri,
        )
    return data


def _memory_check(ref: ArtifactRef) -> tuple[int, str, object]:
    data = _memory_bytes(ref)
    return len(data), "sha256:" + hashlib.sha256(data).hexdigest(), None


def _file_check(ref: ArtifactRef) -> tuple[int, str, object]:
    path = _local_path(ref)
    try:
        stat = path.stat()
    except OSError as exc:
        raise ArtifactError(
            f"artifact {path} cannot be read ({exc.strerror or exc}); it was removed "
            "(runs gc, retention) or is not reachable from this machine",
            uri=ref.uri,
        ) from None
    key = (str(path), stat.st_size, stat.st_mtime_ns, ref.checksum)
    with _verified_lock:
        if key in _verified:
            return ref.size, ref.checksum, None
    checksum = _file_checksum(path) if stat.st_size == ref.size else ""
    return stat.st_size, checksum, key


def _memory_scan(ref: ArtifactRef) -> pl.LazyFrame:
    return pl.read_ipc(io.BytesIO(_memory_bytes(ref))).lazy()


def _file_scan(ref: ArtifactRef) -> pl.LazyFrame:
    return pl.scan_ipc(_local_path(ref))


def _memory_head(ref: ArtifactRef, rows: int) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(_memory_bytes(ref)), n_rows=rows)


def _file_head(ref: ArtifactRef, rows: int) -> pl.DataFrame:
    return pl.scan_ipc(_local_path(ref)).head(rows).collect()


class _Reader(NamedTuple):
    check: Callable[[ArtifactRef], tuple[int, str, object]]
    scan: Callable[[ArtifactRef], pl.LazyFrame]
    head: Callable[[ArtifactRef, int], pl.DataFrame]


#: artifact URI scheme → how to check, scan and preview such an artifact
_READERS: dict[str, _Reader] = {
    "memory": _Reader(_memory_check, _memory_scan, _memory_head),
    "file": _Reader(_file_check, _file_scan, _file_head),
}


def _reader(ref: ArtifactRef) -> _Reader:
    kind, *_ = urlsplit(ref.uri)
    reader = _READERS.get(kind)
    if reader is None:
        raise ConfigError(f"artifact {ref.uri}: unsupported location kind {kind!r}")
    return reader


def verify_artifact(ref: ArtifactRef) -> None:
    """Check that the artifact is there, whole, with its checksum; :class:`ArtifactError`
    says what is wrong. A file verified once (same size and modification time) is not
    hashed again by this process."""
    size, checksum, key = _reader(ref).check(ref)
    if size != ref.size or checksum != ref.checksum:
        raise ArtifactError(
            f"artifact {ref.uri} is corrupt: expected {ref.size} bytes with {ref.checksum}, "
            f"found {size} bytes" + ("" if size != ref.size else f" with {checksum}"),
            uri=ref.uri,
        )
    if key is not None:
        with _verified_lock:
            if len(_verified) > 4096:
                _verified.clear()
            _verified[key] = None  # type: ignore[index]


def open_table(ref: ArtifactRef) -> pl.LazyFrame:
    """The artifact's table as a lazy frame, after :func:`verify_artifact`."""
    verify_artifact(ref)
    return _reader(ref).scan(ref)


def preview_table(ref: ArtifactRef, rows: int = 10) -> pl.DataFrame:
    """The first ``rows`` rows, read without loading (or verifying) the whole artifact."""
    try:
        return _reader(ref).head(ref, rows)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ArtifactError(f"artifact {ref.uri} cannot be read: {exc}", uri=ref.uri) from exc


def broken_artifacts(results: Mapping[str, Any]) -> dict[str, str]:
    """Task name → why, for each result that is an artifact reference failing
    :func:`verify_artifact` (missing, torn, altered). A resumed run runs those tasks again."""
    broken: dict[str, str] = {}
    for name, value in results.items():
        if is_artifact_ref(value):
            try:
                verify_artifact(ArtifactRef.from_json(value))
            except ArtifactError as exc:
                broken[name] = str(exc)
    return broken
