"""Table built-ins an ETL user expects: filter, select, rename, derive, group_by, join, sort, sql.

Expressions are SQL expressions over the table's columns, parsed by Polars
(``"units > 5 AND region = 'North'"``, ``"revenue / units"``), checked when the pipeline
is loaded; a column an expression names must exist when the task runs. Every op is
lazy, so a table streams through filter / select / rename / derive from its artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, StrictBool, field_validator, model_validator

from ...artifacts import polars_error
from ...errors import DataError
from ._base import Builtin, pick_table
from ._params import Params, UpstreamName
from ._table import column_index

__all__ = [
    "AGGREGATIONS",
    "DERIVE",
    "FILTER",
    "GROUP_BY",
    "JOIN",
    "RENAME",
    "SELECT",
    "SORT",
    "SQL",
]

ColumnName = Annotated[str, Field(min_length=1)]
ColumnList = Annotated[list[ColumnName], Field(min_length=1)]
AggName = Literal[
    "sum", "mean", "median", "min", "max", "count", "n_unique", "std", "var", "first", "last"
]
AGGREGATIONS: tuple[str, ...] = AggName.__args__  # type: ignore[attr-defined]
JoinHow = Literal["inner", "left", "right", "full", "semi", "anti", "cross"]


def _expression(text: str) -> str:
    """Check ``text`` parses as a SQL expression (ValueError naming the problem if not)."""
    try:
        pl.sql_expr(text)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ValueError(f"not a valid expression {text!r}: {exc}") from None
    return text


Expression = Annotated[str, Field(min_length=1)]


def _check_columns(frame: pl.LazyFrame, names: list[str], what: str) -> None:
    for name in names:
        column_index(frame, name, what=what)


def _collect_schema(frame: pl.LazyFrame, what: str) -> None:
    """Resolve the plan's schema now, so a bad column or type is a DataError here."""
    try:
        frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise polars_error(what, exc) from exc


# ---------------------------------------------------------------------- filter


class FilterParams(Params):
    where: Expression = Field(description="SQL condition, e.g. \"units > 5 AND region = 'North'\"")
    input: UpstreamName = None

    @field_validator("where")
    @classmethod
    def _parse(cls, value: str) -> str:
        return _expression(value)


def _filter(params: FilterParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.filter"
    frame = pick_table(what, inputs, params.input).filter(pl.sql_expr(params.where))
    _collect_schema(frame, what)
    return frame


# ---------------------------------------------------------------------- select / rename


class SelectParams(Params):
    columns: ColumnList
    input: UpstreamName = None


def _select(params: SelectParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.select"
    frame = pick_table(what, inputs, params.input)
    _check_columns(frame, params.columns, what)
    return frame.select(list(dict.fromkeys(params.columns)))


class RenameParams(Params):
    columns: Annotated[dict[ColumnName, ColumnName], Field(min_length=1)] = Field(
        description="old name → new name"
    )
    input: UpstreamName = None


def _rename(params: RenameParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.rename"
    frame = pick_table(what, inputs, params.input)
    _check_columns(frame, list(params.columns), what)
    names = [params.columns.get(n, n) for n in frame.collect_schema().names()]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise DataError(f"{what}: renaming gives two columns named {clashes[0]!r}")
    return frame.rename(params.columns)


# ---------------------------------------------------------------------- derive


class DeriveParams(Params):
    columns: Annotated[dict[ColumnName, Expression], Field(min_length=1)] = Field(
        description='new (or replaced) column → SQL expression, e.g. {margin: "revenue / units"}'
    )
    input: UpstreamName = None

    @field_validator("columns")
    @classmethod
    def _parse(cls, value: dict[str, str]) -> dict[str, str]:
        for text in value.values():
            _expression(text)
        return value


def _derive(params: DeriveParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.derive"
    frame = pick_table(what, inputs, params.input)
    for name, text in params.columns.items():  # in order: a later column may use an earlier
        frame = frame.with_columns(pl.sql_expr(text).alias(name))
    _collect_schema(frame, what)
    return frame


# ---------------------------------------------------------------------- group_by


class Aggregation(Params):
    column: ColumnName | None = Field(default=None, description="input column (none for count)")
    fn: AggName
    name: ColumnName | None = Field(default=None, description="output column (default COLUMN_FN)")

    @model_validator(mode="after")
    def _needs_column(self) -> Aggregation:
        if self.column is None and self.fn != "count":
            raise ValueError(f"{self.fn} needs a column")
        return self

    @property
    def output(self) -> str:
        return self.name or (f"{self.column}_{self.fn}" if self.column else "count")

    def expr(self) -> pl.Expr:
        if self.column is None:
            return pl.len().alias(self.output)
        col = pl.col(self.column)
        return getattr(col, self.fn)().alias(self.output)  # type: ignore[no-any-return]


class GroupByParams(Params):
    by: ColumnList
    aggs: Annotated[list[Aggregation], Field(min_length=1)]
    input: UpstreamName = None


def _group_by(params: GroupByParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.group_by"
    frame = pick_table(what, inputs, params.input)
    _check_columns(frame, params.by + [a.column for a in params.aggs if a.column], what)
    outputs = params.by + [a.output for a in params.aggs]
    clashes = sorted({n for n in outputs if outputs.count(n) > 1})
    if clashes:
        raise DataError(f"{what}: two output columns are named {clashes[0]!r}; set aggs[].name")
    result = frame.group_by(params.by).agg(a.expr() for a in params.aggs).sort(params.by)
    _collect_schema(result, what)
    return result


# ---------------------------------------------------------------------- join


class JoinParams(Params):
    left: ColumnName = Field(description="upstream task whose table is the left side")
    right: ColumnName = Field(description="upstream task whose table is the right side")
    on: ColumnList | None = None
    left_on: ColumnList | None = None
    right_on: ColumnList | None = None
    how: JoinHow = "inner"
    suffix: str = "_right"

    @model_validator(mode="after")
    def _keys(self) -> JoinParams:
        pair = (self.left_on is None, self.right_on is None)
        if self.how == "cross":
            if self.on or not all(pair):
                raise ValueError("a cross join takes no join columns")
            return self
        if self.on is None and pair == (True, True):
            raise ValueError("give on (columns in both tables) or left_on and right_on")
        if self.on is not None and pair != (True, True):
            raise ValueError("give either on, or left_on and right_on, not both")
        if pair in ((True, False), (False, True)):
            raise ValueError("left_on and right_on go together")
        if self.left_on and self.right_on and len(self.left_on) != len(self.right_on):
            raise ValueError("left_on and right_on need the same number of columns")
        return self


def _join(params: JoinParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.join"
    left = pick_table(what, inputs, params.left)
    right = pick_table(what, inputs, params.right)
    left_on = params.on or params.left_on or []
    right_on = params.on or params.right_on or []
    _check_columns(left, left_on, f"{what} (left: {params.left})")
    _check_columns(right, right_on, f"{what} (right: {params.right})")
    if params.how == "cross":
        result = left.join(right, how="cross", suffix=params.suffix)
    else:
        result = left.join(
            right,
            left_on=left_on,
            right_on=right_on,
            how=params.how,
            suffix=params.suffix,
            maintain_order="left_right",
        )
    _collect_schema(result, what)
    return result


# ---------------------------------------------------------------------- sort


class SortParams(Params):
    by: ColumnList
    descending: StrictBool | list[StrictBool] = False
    nulls_last: StrictBool = True
    input: UpstreamName = None

    @model_validator(mode="after")
    def _one_flag_per_column(self) -> SortParams:
        if isinstance(self.descending, list) and len(self.descending) != len(self.by):
            raise ValueError(
                f"descending has {len(self.descending)} flags for {len(self.by)} columns"
            )
        return self


def _sort(params: SortParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.sort"
    frame = pick_table(what, inputs, params.input)
    _check_columns(frame, params.by, what)
    return frame.sort(
        params.by, descending=params.descending, nulls_last=params.nulls_last, maintain_order=True
    )


# ---------------------------------------------------------------------- sql


class SqlParams(Params):
    query: Annotated[str, Field(min_length=1)] = Field(
        description="a SELECT over the upstream tables, each named by its task"
    )


def _sql(params: SqlParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    what = "builtin.sql"
    if not inputs:
        raise DataError(f"{what} needs upstream tables: give the task a depends_on")
    tables = {name: pick_table(what, inputs, name) for name in inputs}
    try:
        with pl.SQLContext(frames=tables, eager=False) as context:
            result = context.execute(params.query)
        result.collect_schema()
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise polars_error(f"{what}: query failed (tables: {', '.join(tables)})", exc) from exc
    return result


FILTER = Builtin(
    name="builtin.filter",
    kind="transform",
    description='Keep the rows where a SQL condition holds (where: "units > 5").',
    params_model=FilterParams,
    work=_filter,
)
SELECT = Builtin(
    name="builtin.select",
    kind="transform",
    description="Keep these columns, in this order.",
    params_model=SelectParams,
    work=_select,
)
RENAME = Builtin(
    name="builtin.rename",
    kind="transform",
    description="Rename columns (columns: {old: new}).",
    params_model=RenameParams,
    work=_rename,
)
DERIVE = Builtin(
    name="builtin.derive",
    kind="transform",
    description="Add (or replace) columns computed by SQL expressions (columns: {name: expr}).",
    params_model=DeriveParams,
    work=_derive,
)
GROUP_BY = Builtin(
    name="builtin.group_by",
    kind="transform",
    description="Group rows by columns and aggregate (aggs: [{column, fn, name}]), sorted by "
    "the group columns.",
    params_model=GroupByParams,
    work=_group_by,
)
JOIN = Builtin(
    name="builtin.join",
    kind="transform",
    description="Join two upstream tables (left, right) on columns (inner, left, right, full, "
    "semi, anti, cross).",
    params_model=JoinParams,
    work=_join,
    many_inputs=True,
)
SORT = Builtin(
    name="builtin.sort",
    kind="transform",
    description="Sort rows by columns (stable; nulls last unless nulls_last: false).",
    params_model=SortParams,
    work=_sort,
)
SQL = Builtin(
    name="builtin.sql",
    kind="transform",
    description="Run a SQL SELECT over the upstream tables, each named by its task.",
    params_model=SqlParams,
    work=_sql,
    many_inputs=True,
)
