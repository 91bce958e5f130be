""":class:`TableInput`: how an upstream table reaches a user agent."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl

from ._convert import frame_from_json, to_lazy
from ._ref import ArtifactRef
from .store import open_table, preview_table

__all__ = ["TableInput"]


class TableInput(Mapping[str, Any]):
    """An upstream table, read when asked: ``to_polars()``, ``to_lazy()``, ``to_arrow()``,
    ``to_pandas()`` (pandas installed), ``rows`` / ``columns`` / ``to_json()``.

    Built from an artifact reference (read and verified against its checksum on first
    use), or from the JSON ``{"columns", "rows"}`` form. It is also a read-only mapping
    with the keys ``columns`` and ``rows``, so code written for JSON tables
    (``table["rows"]``) keeps working.
    """

    __slots__ = ("_frame", "_json", "ref")

    def __init__(self, ref: ArtifactRef | None = None, *, json: Any = None) -> None:
        self.ref = ref
        self._json = json
        self._frame: pl.DataFrame | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "columns":
            return self.columns
        if key == "rows":
            return self.rows
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("columns", "rows"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        where = self.ref.uri if self.ref is not None else "JSON"
        return f"TableInput({where}, rows={self.num_rows}, columns={self.columns})"

    @property
    def num_rows(self) -> int:
        if self.ref is not None:
            return self.ref.rows
        return self.to_polars().height

    @property
    def columns(self) -> list[str]:
        if self.ref is not None:
            return self.ref.columns
        return self.to_polars().columns

    def to_lazy(self) -> pl.LazyFrame:
        """A lazy frame over the table (the artifact is streamed, not loaded, when possible)."""
        if self._frame is not None:
            return self._frame.lazy()
        if self.ref is not None:
            return open_table(self.ref)
        return to_lazy(self._json, what="input")

    def to_polars(self) -> pl.DataFrame:
        if self._frame is None:
            if self.ref is not None:
                self._frame = open_table(self.ref).collect()
            else:
                self._frame = frame_from_json(self._json)
        return self._frame

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table``."""
        return self.to_polars().to_arrow()

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (needs pandas installed)."""
        return self.to_polars().to_pandas()

    @property
    def rows(self) -> list[list[Any]]:
        """The rows as lists of values (the whole table in Python objects: small tables)."""
        return [list(row) for row in self.to_polars().iter_rows()]

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``{"columns": [...], "rows": [[...], ...]}``."""
        from ._convert import frame_to_json

        return frame_to_json(self.to_polars())

    def head(self, rows: int = 10) -> pl.DataFrame:
        """The first ``rows`` rows, without reading the whole artifact."""
        if self.ref is not None and self._frame is None:
            return preview_table(self.ref, rows)
        return self.to_polars().head(rows)
