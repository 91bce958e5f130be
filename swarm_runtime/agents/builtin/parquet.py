"""``builtin.parquet_source`` and ``builtin.parquet_sink``: Parquet files in and out, streamed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, StrictInt

from ..._atomic import atomic_write_with
from ...artifacts import polars_error
from ...errors import DataError
from ._base import Builtin, pick_table
from ._params import Columns, FilePath, Params, UpstreamName
from ._table import column_index

__all__ = ["PARQUET_SINK", "PARQUET_SOURCE"]

Compression = Literal["zstd", "snappy", "lz4", "gzip", "uncompressed"]


class ParquetSourceParams(Params):
    path: FilePath
    columns: Columns = None
    limit: Annotated[StrictInt, Field(ge=0)] | None = Field(
        default=None, description="read at most this many rows"
    )


class ParquetSinkParams(Params):
    path: FilePath
    input: UpstreamName = None
    compression: Compression = "zstd"


def _read_parquet(params: ParquetSourceParams, _inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.parquet_source"
    path = Path(params.path)
    if not path.is_file():
        where = "not found" if not path.exists() else "not a file"
        raise DataError(f"{what}: {params.path}: {where} (relative to {Path.cwd()})")
    try:
        frame = pl.scan_parquet(path)
        frame.collect_schema()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise polars_error(f"{what}: {params.path} is not a readable Parquet file", exc) from exc
    if params.columns is not None:
        for name in params.columns:
            column_index(frame, name, what=what)
        frame = frame.select(params.columns)
    if params.limit is not None:
        frame = frame.head(params.limit)
    return frame


def _write_parquet(params: ParquetSinkParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    what = "builtin.parquet_sink"
    frame = pick_table(what, inputs, params.input)

    def write(tmp: Path) -> None:
        frame.sink_parquet(tmp, compression=params.compression)

    try:
        target, _ = atomic_write_with(params.path, write)
    except pl.exceptions.PolarsError as exc:
        raise polars_error(f"{what}: cannot write {params.path}", exc) from exc
    rows = pl.scan_parquet(target).select(pl.len()).collect().item()
    return {"path": str(target), "rows": rows, "bytes": target.stat().st_size}


PARQUET_SOURCE = Builtin(
    name="builtin.parquet_source",
    kind="source",
    description="Read a Parquet file (streamed; columns and limit read only what is needed).",
    params_model=ParquetSourceParams,
    work=_read_parquet,
)
PARQUET_SINK = Builtin(
    name="builtin.parquet_sink",
    kind="sink",
    description="Write an upstream table to a Parquet file (zstd by default), atomically.",
    params_model=ParquetSinkParams,
    work=_write_parquet,
)
