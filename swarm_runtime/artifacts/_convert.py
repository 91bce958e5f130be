"""Conversions between the table forms: JSON ``{"columns", "rows"}``, Polars, Arrow, pandas.

JSON columns get one type each: ints (Int64), numbers (Float64 when ints and floats
mix), booleans, strings, lists, objects with the same keys; a column mixing kinds
(numbers and text, objects with different keys) becomes text, non-text values as
their JSON. ``null`` is null everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import polars as pl

from ..errors import DataError

__all__ = [
    "frame_from_json",
    "frame_to_json",
    "is_json_table",
    "is_table_value",
    "polars_error",
    "to_lazy",
]

_SHAPE = 'expected a table {"columns": [names...], "rows": [[values...], ...]}'
_INT64 = 2**63


def is_json_table(value: object) -> bool:
    """True for the JSON table shape (a mapping with list ``columns`` and ``rows``)."""
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("rows"), list)
    )


def _column(name: str, values: list[Any]) -> pl.Series:
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pl.Series(name, values, dtype=pl.Null)
    if kinds == {bool}:
        return pl.Series(name, values, dtype=pl.Boolean)
    if kinds == {int} and all(v is None or -_INT64 <= v < _INT64 for v in values):
        return pl.Series(name, values, dtype=pl.Int64)
    if kinds <= {int, float}:
        return pl.Series(name, [None if v is None else float(v) for v in values], dtype=pl.Float64)
    if kinds == {str}:
        return pl.Series(name, values, dtype=pl.String)
    if kinds == {list} or (
        kinds == {dict} and len({tuple(v) for v in values if v is not None}) == 1
    ):
        try:  # a list column, or records with the same keys: kept nested
            return pl.Series(name, values)
        except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            pass
    return pl.Series(
        name,
        [
            None if v is None else v if isinstance(v, str) else orjson.dumps(v).decode()
            for v in values
        ],
        dtype=pl.String,
    )


def frame_from_json(value: object, *, what: str = "input") -> pl.DataFrame:
    """The JSON table ``value`` as a DataFrame; :class:`DataError` names what is wrong."""
    if not isinstance(value, Mapping):
        raise DataError(f"{what} is not a table: {_SHAPE}, got {type(value).__name__}")
    columns = value.get("columns")
    rows = value.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        missing = [k for k, v in (("columns", columns), ("rows", rows)) if not isinstance(v, list)]
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
    data = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in columns]
    return pl.DataFrame([_column(name, data[i]) for i, name in enumerate(columns)])


def _cell(value: Any) -> Any:
    if isinstance(value, float) and value - value != 0:
        return None  # NaN / infinity cannot travel as JSON
    return value


def frame_to_json(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """The JSON table form of ``frame`` (NaN and infinities become null)."""
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    floats = [i for i, dtype in enumerate(df.dtypes) if dtype.is_float()]
    temporal = [name for name, dtype in df.schema.items() if dtype.is_temporal()]
    if temporal:
        df = df.with_columns(pl.col(temporal).cast(pl.String))
    rows = [list(row) for row in df.iter_rows()]
    if floats:
        for row in rows:
            for i in floats:
                row[i] = _cell(row[i])
    return {"columns": df.columns, "rows": rows}


def polars_error(what: str, exc: BaseException) -> DataError:
    """A Polars error as a :class:`DataError` for ``what``: its cause in one line."""
    text = str(exc)
    start = text.find("Original error: ```")
    if start >= 0:
        text = text[start + len("Original error: ```") :].split("```", 1)[0]
    reason = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return DataError(f"{what}: {reason}")


def is_table_value(value: object) -> bool:
    """True for a value a task may return as a table (Polars, Arrow, pandas)."""
    if isinstance(value, (pl.DataFrame, pl.LazyFrame)):
        return True
    module = type(value).__module__
    return (module.startswith("pyarrow") and type(value).__name__ in ("Table", "RecordBatch")) or (
        module.startswith("pandas") and type(value).__name__ == "DataFrame"
    )


def to_lazy(value: object, *, what: str = "input") -> pl.LazyFrame:
    """Any table form as a lazy frame: Polars, Arrow, pandas, JSON, or a table input."""
    if isinstance(value, pl.LazyFrame):
        return value
    if isinstance(value, pl.DataFrame):
        return value.lazy()
    lazy = getattr(value, "to_lazy", None)
    if callable(lazy):
        result = lazy()
        if isinstance(result, pl.LazyFrame):
            return result
    if is_table_value(value):
        try:
            converted = (
                pl.from_pandas(value)
                if type(value).__module__.startswith("pandas")
                else (pl.from_arrow(value))
            )
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise DataError(f"{what}: cannot convert the {type(value).__name__}: {exc}") from exc
        assert isinstance(converted, pl.DataFrame)
        return converted.lazy()
    return frame_from_json(value, what=what).lazy()
