"""Column helpers for the built-in agents, on Polars frames.

A column is *numeric* when its type is an integer or float type (booleans are not
numbers here), *categorical* otherwise. Tables travel between tasks as artifacts
(see :mod:`swarm_runtime.artifacts`); the JSON form ``{"columns": [...], "rows":
[[...], ...]}`` is still accepted as input.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ...errors import DataError

__all__ = ["column_index", "is_number", "is_numeric_dtype", "numeric_columns", "select_columns"]


def is_number(value: object) -> bool:
    """True for int and float values, False for bool, None and everything else."""
    return (type(value) is int) or (type(value) is float)


def is_numeric_dtype(dtype: pl.DataType) -> bool:
    """Integer and float types (not booleans, not the all-null type)."""
    return dtype.is_numeric()


def numeric_columns(frame: pl.LazyFrame) -> list[str]:
    """Columns of a numeric type."""
    return [name for name, dtype in frame.collect_schema().items() if is_numeric_dtype(dtype)]


def column_index(frame: pl.LazyFrame, name: str, *, what: str) -> int:
    """Position of column ``name``; :class:`DataError` listing the columns if absent."""
    names = frame.collect_schema().names()
    try:
        return names.index(name)
    except ValueError:
        raise DataError(
            f"{what}: unknown column {name!r}; the table has: {', '.join(names) or 'no columns'}"
        ) from None


def select_columns(
    frame: pl.LazyFrame, requested: Sequence[str] | None, *, numeric: bool, what: str
) -> list[str]:
    """The columns an operation works on: ``requested`` (checked) or every eligible column.

    With ``numeric=True`` a requested column must be numeric; otherwise the default is
    every numeric column, and callers filter for categorical ones themselves.
    """
    schema = frame.collect_schema()
    if requested is None:
        return numeric_columns(frame) if numeric else schema.names()
    for name in requested:
        column_index(frame, name, what=what)
        dtype = schema[name]
        if not numeric or is_numeric_dtype(dtype):
            continue
        if dtype == pl.Null:
            if frame.select(pl.len()).collect().item() == 0:
                continue  # an empty table: nothing to refuse
            raise DataError(f"{what}: column {name!r} is not numeric (it holds only nulls)")
        raise DataError(
            f"{what}: column {name!r} is not numeric (it holds {dtype} values, which are "
            "not numbers)"
        )
    return list(dict.fromkeys(requested))
