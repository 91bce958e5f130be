"""Sinks: write an upstream result to a JSON or CSV file, atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import polars as pl
from pydantic import Field, StrictBool

from ..._atomic import atomic_write, atomic_write_with
from ..._json import dumps
from ...artifacts import frame_to_json
from ...errors import DataError, PayloadError
from ._base import Builtin, pick_input, pick_table
from ._params import FilePath, Params, UpstreamName

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


def _json_value(value: Any) -> Any:
    if isinstance(value, (pl.LazyFrame, pl.DataFrame)):
        return frame_to_json(value)
    return value


def _write_json(params: JsonSinkParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    what = "builtin.json_sink"
    if params.input is None and len(inputs) > 1:
        # several upstream results: write them all, keyed by task
        value: Any = {name: _json_value(v) for name, v in inputs.items()}
    else:
        _, value = pick_input(what, inputs, params.input)
    rows: int | None = None
    if isinstance(value, (pl.LazyFrame, pl.DataFrame)) or (
        isinstance(value, Mapping) and "columns" in value and "rows" in value
    ):
        table = frame_to_json(pick_table(what, {"input": value}, None))
        rows = len(table["rows"])
        value = table
        if params.records:
            value = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
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


def _json_text(value: Any) -> str:
    return orjson.dumps(value.to_list() if isinstance(value, pl.Series) else value).decode()


def _write_csv(params: CsvSinkParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    frame = pick_table("builtin.csv_sink", inputs, params.input)
    schema = frame.collect_schema()
    nested = [n for n, t in schema.items() if t.is_nested()]
    if nested:
        frame = frame.with_columns(
            pl.col(n).map_elements(_json_text, return_dtype=pl.String) for n in nested
        )

    def write(tmp: Path) -> None:
        frame.sink_csv(tmp, separator=params.delimiter, include_header=params.header)

    try:
        target, _ = atomic_write_with(params.path, write)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"builtin.csv_sink: cannot write {params.path}: {exc}") from exc
    rows = frame.select(pl.len()).collect().item()
    return {"path": str(target), "rows": rows, "bytes": target.stat().st_size}


JSON_SINK = Builtin(
    name="builtin.json_sink",
    kind="sink",
    description="Write the upstream result (any JSON; several upstream results as one object "
    "keyed by task) to a JSON file, atomically.",
    params_model=JsonSinkParams,
    work=_write_json,
    many_inputs=True,
)
CSV_SINK = Builtin(
    name="builtin.csv_sink",
    kind="sink",
    description="Write an upstream table to a CSV file with a header line, atomically; "
    "null becomes an empty cell.",
    params_model=CsvSinkParams,
    work=_write_csv,
)
