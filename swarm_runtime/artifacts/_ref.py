"""The small reference a table result travels as: where the artifact is, and how to check it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MARKER", "ArtifactRef", "is_artifact_ref"]

#: the key (and its value) that marks a JSON object as an artifact reference
MARKER = "$artifact"
_VERSION = "table/1"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A table artifact: ``uri`` (``file:///...`` or ``memory://...``), row count,
    schema (column name → Polars dtype name, in order), checksum (``sha256:HEX``),
    size in bytes and format (``arrow-ipc``).

    Its JSON form (:meth:`to_json`) is what a task's result message carries: a few
    hundred bytes whatever the table's size.
    """

    uri: str
    rows: int
    schema: tuple[tuple[str, str], ...]
    checksum: str
    size: int
    format: str = "arrow-ipc"

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.schema]

    def to_json(self) -> dict[str, Any]:
        return {
            MARKER: _VERSION,
            "uri": self.uri,
            "rows": self.rows,
            "schema": [list(pair) for pair in self.schema],
            "checksum": self.checksum,
            "bytes": self.size,
            "format": self.format,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ArtifactRef:
        """The reference in ``value`` (checked with :func:`is_artifact_ref` first)."""
        from ..errors import ArtifactError

        try:
            return cls(
                uri=str(value["uri"]),
                rows=int(value["rows"]),
                schema=tuple((str(n), str(t)) for n, t in value["schema"]),
                checksum=str(value["checksum"]),
                size=int(value["bytes"]),
                format=str(value.get("format", "arrow-ipc")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed artifact reference {dict(value)!r}: {exc}") from None


def is_artifact_ref(value: object) -> bool:
    """True if ``value`` is the JSON form of an :class:`ArtifactRef`."""
    return isinstance(value, Mapping) and value.get(MARKER) == _VERSION
