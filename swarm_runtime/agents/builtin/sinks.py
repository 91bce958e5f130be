"""Sinks: write an upstream result to a JSON or CSV file, atomically."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, StrictBool

from ..._json import dumps
from ...errors import DataError, PayloadError
from ._atomic import atomic_write
from ._base import Builtin, pick_input, pick_table
from ._params import FilePath, Params, UpstreamName
from ._table import Table

__all__ = ["CSV_SINK", "JSON_SINK"]


class JsonSinkParams(Params):
    path: FilePath
    input: UpstreamName = None
    indent: Literal[0, 2] = Field(default=2, description="2 = pretty-printed, 0 = compact")
    records: StrictBool = Field(
        default=False, description='write a table as a list of {"column": value} objects'
    )


class CsvSinkParams(Params):
    path: FilePath
    input: UpstreamName = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    header: StrictBool = True


def _write_json(params: JsonSinkParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    what = "builtin.json_sink"
    if params.input is None and len(inputs) > 1:
        value: Any = dict(inputs)  # several upstream results: write them all, keyed by task
    else:
        _, value = pick_input(what, inputs, params.input)
    rows: int | None = None
    if isinstance(value, Mapping) and "columns" in value and "rows" in value:
        table = Table.from_json(value, what=f"{what}: the input")
        rows = len(table.rows)
        if params.records:
            value = [dict(zip(table.columns, row, strict=True)) for row in table.rows]
    elif params.records:
        raise DataError(f"{what}: records: true needs a table as input")
    try:
        data = dumps(value, what="result")
    except PayloadError as exc:
        raise DataError(f"{what}: {exc}") from exc
    if params.indent:
        data = orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2)
    target = atomic_write(params.path, data + b"\n")
    return {"path": str(target), "rows": rows, "bytes": len(data) + 1}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _write_csv(params: CsvSinkParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    table = pick_table("builtin.csv_sink", inputs, params.input)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=params.delimiter, lineterminator="\n")
    if params.header:
        writer.writerow(table.columns)
    writer.writerows([_cell(v) for v in row] for row in table.rows)
    data = buffer.getvalue().encode()
    target = atomic_write(params.path, data)
    return {"path": str(target), "rows": len(table.rows), "bytes": len(data)}


JSON_SINK = Builtin(
    name="builtin.json_sink",
    kind="sink",
    description="Write the upstream result (any JSON; several upstream results as one object "
    "keyed by task) to a JSON file, atomically.",
    params_model=JsonSinkParams,
    work=_write_json,
)
CSV_SINK = Builtin(
    name="builtin.csv_sink",
    kind="sink",
    description="Write an upstream table to a CSV file with a header line, atomically; "
    "null becomes an empty cell.",
    params_model=CsvSinkParams,
    work=_write_csv,
)
