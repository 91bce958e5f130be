"""Sources: read a CSV file, a JSON Lines file or a SQLite table into a table."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import orjson
import polars as pl
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from ...artifacts import frame_from_json
from ...errors import DataError
from ._base import Builtin
from ._params import Columns, FilePath, Params
from ._table import column_index

__all__ = ["CSV_SOURCE", "JSONL_SOURCE", "SQLITE_SOURCE"]

DEFAULT_NULLS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")


class CsvSourceParams(Params):
    path: FilePath
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8"
    columns: Columns = None
    null_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NULLS),
        description="cell texts read as null (missing)",
    )
    infer_types: StrictBool = Field(
        default=True, description="read integer and float columns as numbers"
    )
    limit: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="read at most this many rows"
    )


class JsonlSourceParams(Params):
    path: FilePath
    columns: Columns = None
    limit: Annotated[StrictInt, Field(ge=0)] | None = None


SqlValue = StrictStr | StrictInt | StrictFloat | None


class SqliteSourceParams(Params):
    path: FilePath
    table: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="read this whole table (or give a query)"
    )
    query: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="run this SELECT (or give a table)"
    )
    parameters: list[SqlValue] = Field(
        default_factory=list, description="values for the query's ? placeholders"
    )
    limit: Annotated[StrictInt, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> SqliteSourceParams:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table or query")
        if self.parameters and self.query is None:
            raise ValueError("parameters apply to a query, not a table")
        return self


def _existing_file(path: str, what: str) -> Path:
    file = Path(path)
    if not file.exists():
        raise DataError(f"{what}: file not found: {path} (relative to {Path.cwd()})")
    if not file.is_file():
        raise DataError(f"{what}: {path} is not a file")
    return file


def _select(frame: pl.LazyFrame, columns: list[str] | None, what: str) -> pl.LazyFrame:
    if columns is None:
        return frame
    for name in columns:
        column_index(frame, name, what=what)
    return frame.select(columns)


#: the longest header line read (characters): a file with no line break early on is refused
#: at once instead of being read whole into memory to find its first line
MAX_HEADER_CHARS = 1024 * 1024


def _bounded_lines(handle: Any, limit: int, what: str, path: str) -> Iterator[str]:
    """The file's lines for the csv module, refusing to read past ``limit`` characters."""
    used = 0
    while line := handle.readline(limit - used + 1):
        used += len(line)
        if used > limit:
            raise DataError(
                f"{what}: {path}: the header line is longer than {limit} characters (is this "
                "a CSV file with a header line?)"
            )
        yield line


def _csv_header(params: CsvSourceParams, encoding: str, what: str) -> list[str]:
    with Path(params.path).open(newline="", encoding=encoding) as handle:
        lines = _bounded_lines(handle, MAX_HEADER_CHARS, what, params.path)
        reader = csv.reader(lines, delimiter=params.delimiter, strict=True)
        header = next(reader, None)
    if header is None:
        raise DataError(f"{what}: {params.path} is empty; expected a header line")
    columns = [name.strip() or f"unnamed_{i}" for i, name in enumerate(header)]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise DataError(
            f"{what}: {params.path}: header names {', '.join(map(repr, duplicates))} "
            "more than once; column names must be unique"
        )
    return columns


#: rows Polars infers the column types from before the whole file is checked against them
SAMPLE_ROWS = 10_000


def _csv_types(scan: Callable[..., pl.LazyFrame]) -> dict[str, pl.DataType]:
    """Int and float columns as numbers, every other column (booleans, dates) as text,
    decided over the whole file, as if every row had been looked at.

    Fast path: infer from the first rows, then parse only the number columns over the
    whole file (a parallel pass). A value that does not parse, or a column with only nulls
    in the sample, sends it to Polars' whole-file inference (a slower, serial pass).
    """

    def numeric_only(schema: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
        return {n: d if d.is_numeric() else pl.String() for n, d in schema.items()}

    types = numeric_only(scan(None, SAMPLE_ROWS).collect_schema())
    numbers = [name for name, dtype in types.items() if dtype.is_numeric()]
    try:
        sample = scan(types).head(SAMPLE_ROWS).select(pl.all().is_null().all()).collect()
        if not any(sample.row(0)):
            if numbers:
                scan(types).select(pl.col(numbers).null_count()).collect()
            return types
    except pl.exceptions.ComputeError:
        pass  # a value further down is not a number of the sampled type
    return numeric_only(scan(None).collect_schema())


def _read_csv(params: CsvSourceParams, _inputs: Mapping[str, Any]) -> pl.LazyFrame:
    """Stream the CSV with Polars: integer and float columns as numbers, the rest as text.

    A short row's missing fields are null and blank lines are skipped (as pandas does).
    """
    what = "builtin.csv_source"
    _existing_file(params.path, what)
    utf8 = params.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    encoding = "utf-8-sig" if utf8 else params.encoding
    try:
        columns = _csv_header(params, encoding, what)
        source: Any = params.path
        if not utf8:  # Polars reads UTF-8 only: decode here (in memory) and hand it UTF-8
            source = Path(params.path).read_text(encoding=encoding).encode()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{what}: {params.path} is not {params.encoding} text ({exc.reason} at byte "
            f"{exc.start}); set params.encoding"
        ) from exc
    except csv.Error as exc:
        raise DataError(f"{what}: {params.path}: malformed CSV: {exc}") from exc
    except LookupError as exc:
        raise DataError(f"{what}: unknown encoding {params.encoding!r}") from exc
    except OSError as exc:
        raise DataError(f"{what}: cannot read {params.path}: {exc.strerror or exc}") from exc
    nulls = list(dict.fromkeys(params.null_values))

    def scan(schema: Mapping[str, pl.DataType] | None, sample: int | None = None) -> pl.LazyFrame:
        return pl.scan_csv(
            source,
            separator=params.delimiter,
            has_header=True,
            new_columns=columns,
            schema=schema,
            infer_schema=schema is None,
            infer_schema_length=sample,  # None: the whole file
            null_values=[v for v in nulls if v] or None,
            empty_string_is_null="" in nulls,
            encoding="utf8",
        )

    try:
        types = _csv_types(scan) if params.infer_types else dict.fromkeys(columns, pl.String())
        frame = scan(types)
        if not params.infer_types:
            frame.select(pl.len()).collect()  # read it once, so a malformed file fails here
    except pl.exceptions.PolarsError as exc:
        message = str(exc).split("\n", 1)[0]
        if "utf-8" in message.lower() or "utf8" in message.lower():
            raise DataError(
                f"{what}: {params.path} is not utf-8 text ({message}); set params.encoding"
            ) from exc
        raise DataError(f"{what}: {params.path}: malformed CSV: {message}") from exc
    frame = frame.filter(~pl.all_horizontal(pl.all().is_null()))  # blank lines
    if params.limit is not None:
        frame = frame.head(params.limit)
    return _select(frame, params.columns, what)


def _read_jsonl(params: JsonlSourceParams, _inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.jsonl_source"
    file = _existing_file(params.path, what)
    records: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    try:
        with file.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if params.limit is not None and len(records) >= params.limit:
                    break
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise DataError(f"{what}: {params.path}:{number}: invalid JSON: {exc}") from exc
                if not isinstance(record, dict):
                    raise DataError(
                        f"{what}: {params.path}:{number}: expected a JSON object per line, "
                        f"got {type(record).__name__}"
                    )
                records.append(record)
                columns.update(dict.fromkeys(record))
    except OSError as exc:
        raise DataError(f"{what}: cannot read {params.path}: {exc.strerror or exc}") from exc
    names = list(columns)
    rows = [[record.get(name) for name in names] for record in records]
    frame = frame_from_json({"columns": names, "rows": rows}, what=what).lazy()
    return _select(frame, params.columns, what)


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_sqlite(params: SqliteSourceParams, _inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.sqlite_source"
    file = _existing_file(params.path, what)
    uri = f"{file.absolute().as_uri()}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"{what}: cannot open {params.path}: {exc}") from exc
    try:
        if params.table is not None:
            known = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
                )
            ]
            if params.table not in known:
                raise DataError(
                    f"{what}: {params.path} has no table {params.table!r}; tables: "
                    f"{', '.join(known) or 'none'}"
                )
            sql = f"SELECT * FROM {_quote_identifier(params.table)}"
        else:
            sql = params.query or ""
        cursor = connection.execute(sql, params.parameters)
        names = [d[0] for d in cursor.description or ()]
        fetched = cursor.fetchall() if params.limit is None else cursor.fetchmany(params.limit)
    except sqlite3.DatabaseError as exc:
        raise DataError(f"{what}: {params.path}: {exc}") from exc
    finally:
        connection.close()
    if len(set(names)) != len(names):
        raise DataError(f"{what}: the query returns duplicate column names {names}; use AS")
    rows = [list(row) for row in fetched]
    for row in rows:
        for i, value in enumerate(row):
            if isinstance(value, bytes):
                raise DataError(
                    f"{what}: column {names[i]!r} holds binary (BLOB) values, which JSON cannot "
                    "carry; select it as hex(...) or leave it out"
                )
            if isinstance(value, float) and value - value != 0:
                row[i] = None  # NaN / infinity cannot travel as JSON
    return frame_from_json({"columns": names, "rows": rows}, what=what).lazy()


CSV_SOURCE = Builtin(
    name="builtin.csv_source",
    kind="source",
    description="Read a CSV file with a header line; integer and float columns become numbers, "
    "empty cells null.",
    params_model=CsvSourceParams,
    work=_read_csv,
)
JSONL_SOURCE = Builtin(
    name="builtin.jsonl_source",
    kind="source",
    description="Read a JSON Lines file (one object per line); keys become columns, "
    "missing keys null.",
    params_model=JsonlSourceParams,
    work=_read_jsonl,
)
SQLITE_SOURCE = Builtin(
    name="builtin.sqlite_source",
    kind="source",
    description="Read a SQLite table, or the rows of a query, opened read-only.",
    params_model=SqliteSourceParams,
    work=_read_sqlite,
)
