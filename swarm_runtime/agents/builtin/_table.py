"""The table format that travels between tasks, and column helpers.

A table is JSON: ``{"columns": ["a", "b"], "rows": [[1, "x"], [2, null]]}``. Columns
are unique strings; every row has one value per column; a value is any JSON value,
``null`` meaning missing. A column is *numeric* when all its non-null values are
int or float (bool is not a number here), *categorical* otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import DataError

__all__ = ["Table", "is_number", "numeric_columns", "select_columns"]

_SHAPE = 'expected a table {"columns": [names...], "rows": [[values...], ...]}'


def is_number(value: object) -> bool:
    """True for int and float values, False for bool, None and everything else."""
    return (type(value) is int) or (type(value) is float)


@dataclass(slots=True)
class Table:
    """A table held row-wise; build it with :meth:`from_json`, send it with :meth:`to_json`."""

    columns: list[str]
    rows: list[list[Any]]

    @classmethod
    def from_json(cls, value: object, *, what: str = "input") -> Table:
        """Check ``value`` has the table shape; raise :class:`DataError` naming what is wrong."""
        if not isinstance(value, Mapping):
            raise DataError(f"{what} is not a table: {_SHAPE}, got {type(value).__name__}")
        columns = value.get("columns")
        rows = value.get("rows")
        if not isinstance(columns, list) or not isinstance(rows, list):
            missing = [
                k for k, v in (("columns", columns), ("rows", rows)) if not isinstance(v, list)
            ]
            raise DataError(f"{what} is not a table: {_SHAPE}; {' and '.join(missing)} missing")
        seen: set[str] = set()
        for i, name in enumerate(columns):
            if not isinstance(name, str):
                raise DataError(f"{what}.columns[{i}] must be a string, got {type(name).__name__}")
            if name in seen:
                raise DataError(f"{what}.columns has {name!r} twice; column names must be unique")
            seen.add(name)
        width = len(columns)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
                raise DataError(f"{what}.rows[{i}] must be a list of {width} values, got {got}")
        return cls(list(columns), rows)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"columns": [...], "rows": [[...], ...]}``."""
        return {"columns": self.columns, "rows": self.rows}

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``, top to bottom."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def index(self, name: str, *, what: str) -> int:
        """Position of column ``name``; :class:`DataError` listing the columns if absent."""
        try:
            return self.columns.index(name)
        except ValueError:
            raise DataError(
                f"{what}: unknown column {name!r}; the table has: "
                f"{', '.join(self.columns) or 'no columns'}"
            ) from None


def _numeric(values: Iterable[Any]) -> bool:
    found = False
    for value in values:
        if value is None:
            continue
        if not is_number(value):
            return False
        found = True
    return found


def numeric_columns(table: Table) -> list[str]:
    """Columns whose non-null values are all numbers (and that have at least one)."""
    if not table.rows:
        return []
    return [name for i, name in enumerate(table.columns) if _numeric(r[i] for r in table.rows)]


def select_columns(
    table: Table, requested: Sequence[str] | None, *, numeric: bool, what: str
) -> list[str]:
    """The columns an operation works on: ``requested`` (checked) or every eligible column.

    With ``numeric=True`` a requested column must be numeric; otherwise the default is
    every numeric column, and callers filter for categorical ones themselves.
    """
    if requested is None:
        return numeric_columns(table) if numeric else list(table.columns)
    for name in requested:
        index = table.index(name, what=what)
        if numeric and table.rows and not _numeric(row[index] for row in table.rows):
            raise DataError(
                f"{what}: column {name!r} is not numeric (it holds values that are not "
                "numbers, or only nulls)"
            )
    return list(dict.fromkeys(requested))
