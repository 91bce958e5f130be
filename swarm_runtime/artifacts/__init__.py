"""Table artifacts: tables written once, checksummed, and passed between tasks by reference.

A task whose result is a table writes it to the run's :class:`ArtifactStore` (Arrow IPC,
SHA-256) and its result message carries only an :class:`ArtifactRef` (location, rows,
schema, checksum). Downstream, :func:`open_table` verifies the artifact and gives a lazy
Polars frame; user agents get a :class:`TableInput`.
"""

from __future__ import annotations

from ._convert import (
    frame_from_json,
    frame_to_json,
    is_json_table,
    is_table_value,
    polars_error,
    to_lazy,
)
from ._location import ArtifactLocation, directory_store
from ._ref import ArtifactRef, is_artifact_ref
from .store import (
    ArtifactStore,
    DirectoryArtifactStore,
    MemoryArtifactStore,
    broken_artifacts,
    open_table,
    preview_table,
    verify_artifact,
)
from .table import TableInput

__all__ = [
    "ArtifactLocation",
    "ArtifactRef",
    "ArtifactStore",
    "DirectoryArtifactStore",
    "MemoryArtifactStore",
    "TableInput",
    "broken_artifacts",
    "directory_store",
    "frame_from_json",
    "frame_to_json",
    "is_artifact_ref",
    "is_json_table",
    "is_table_value",
    "open_table",
    "polars_error",
    "preview_table",
    "to_lazy",
    "verify_artifact",
]
