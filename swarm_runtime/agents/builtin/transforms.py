"""``builtin.transform``: table operations applied in order (clean, normalize, scaling, encoding).

Each op is a name (``clean``) or a mapping with options (``{op: scaling, ddof: 1}``);
``columns`` limits any op to the listed columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, StrictInt, field_validator, model_validator

from ...errors import DataError
from ._base import Builtin, pick_table
from ._params import Columns, Params, UpstreamName
from ._stats import variance
from ._table import Table, is_number, select_columns
from ._validation import did_you_mean

__all__ = ["OPS", "TRANSFORM", "TransformOp", "TransformParams", "apply_op"]

OpName = Literal["clean", "normalize", "scaling", "encoding"]
OPS: tuple[str, ...] = ("clean", "normalize", "scaling", "encoding")
_OPTIONS: dict[str, frozenset[str]] = {
    "clean": frozenset({"columns"}),
    "normalize": frozenset({"columns"}),
    "scaling": frozenset({"columns", "ddof"}),
    "encoding": frozenset({"columns", "max_categories"}),
}


class TransformOp(Params):
    """One op with its options; a bare name in YAML means the op with default options."""

    op: OpName
    columns: Columns = None
    ddof: Annotated[StrictInt, Field(ge=0, le=1)] | None = Field(
        default=None, description="scaling: 0 = population std (default, like numpy), 1 = sample"
    )
    max_categories: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None, description="encoding: skip (or refuse, if listed) columns with more values"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in OPS:
                raise ValueError(
                    f"unknown op {value!r}{did_you_mean(value, OPS)}; "
                    f"expected one of: {', '.join(OPS)}"
                )
            return {"op": value}
        if isinstance(value, Mapping) and isinstance(value.get("op"), str):
            allowed = _OPTIONS.get(value["op"])
            if allowed is not None:
                extra = sorted(k for k in value if k != "op" and k not in allowed)
                if extra and all(k in TransformOp.model_fields for k in extra):
                    raise ValueError(
                        f"option {extra[0]!r} does not apply to op {value['op']!r} "
                        f"(its options: {', '.join(sorted(allowed))})"
                    )
            return value
        if isinstance(value, Mapping):
            raise ValueError(f"an op mapping needs 'op': one of {', '.join(OPS)}")
        raise ValueError(
            f"expected an op name ({', '.join(OPS)}) or a mapping {{op: NAME, ...options}}, "
            f"got {type(value).__name__}"
        )


class TransformParams(Params):
    ops: Annotated[list[TransformOp], Field(min_length=1)]
    input: UpstreamName = None

    @field_validator("ops", mode="before")
    @classmethod
    def _one_op(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value


def _clean(table: Table, op: TransformOp) -> Table:
    """Drop rows with a null (in ``columns``), then duplicate rows (keeping the first)."""
    names = select_columns(table, op.columns, numeric=False, what="clean")
    idx = [table.columns.index(n) for n in names]
    seen: set[Any] = set()
    kept: list[list[Any]] = []
    for row in table.rows:
        if any(row[i] is None for i in idx):
            continue
        key = tuple(_hashable(row[i]) for i in idx)
        if key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return Table(table.columns, kept)


def _hashable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return value


def _map_columns(table: Table, names: list[str], fn: Callable[[list[Any]], list[Any]]) -> Table:
    """A new table with each of ``names`` replaced by ``fn(column values)``."""
    if not table.rows or not names:
        return table
    columns = [list(c) for c in zip(*table.rows, strict=True)]
    for name in names:
        i = table.columns.index(name)
        columns[i] = fn(columns[i])
    return Table(table.columns, [list(row) for row in zip(*columns, strict=True)])


def _minmax(values: list[Any]) -> list[Any]:
    present = [v for v in values if v is not None]
    low, high = min(present), max(present)
    if low == high:
        return [None if v is None else 0.0 for v in values]
    span = high - low
    return [None if v is None else (v - low) / span for v in values]


def _zscore(ddof: int) -> Callable[[list[Any]], list[Any]]:
    def scale(values: list[Any]) -> list[Any]:
        present = [v for v in values if v is not None]
        std = math.sqrt(variance(present, ddof) or 0.0) if len(present) > ddof else 0.0
        if min(present) == max(present) or std == 0 or not math.isfinite(std):
            return [None if v is None else 0.0 for v in values]
        centre = math.fsum(present) / len(present)
        return [None if v is None else (v - centre) / std for v in values]

    return scale


def _normalize(table: Table, op: TransformOp) -> Table:
    """Min-max scaling of numeric columns to [0, 1]; a constant column becomes 0.0."""
    return _map_columns(
        table, select_columns(table, op.columns, numeric=True, what="normalize"), _minmax
    )


def _scaling(table: Table, op: TransformOp) -> Table:
    """z-score of numeric columns (population std unless ``ddof: 1``); constant → 0.0."""
    names = select_columns(table, op.columns, numeric=True, what="scaling")
    return _map_columns(table, names, _zscore(op.ddof or 0))


def _category_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def _encoding(table: Table, op: TransformOp) -> Table:
    """One-hot columns ``<column>_<value>`` (0/1) replace each categorical column in place.

    By default every column with a non-number value and at most ``max_categories``
    (50) distinct values is encoded; a null encodes as all zeros.
    """
    limit = op.max_categories or 50
    explicit = op.columns is not None
    names = select_columns(table, op.columns, numeric=False, what="encoding")
    plans: dict[str, list[Any]] = {}
    for name in names:
        i = table.columns.index(name)
        values = {_hashable(row[i]): row[i] for row in table.rows if row[i] is not None}
        if not explicit and all(is_number(v) for v in values.values()):
            continue
        if len(values) > limit:
            if explicit:
                raise DataError(
                    f"encoding: column {name!r} has {len(values)} distinct values, more than "
                    f"max_categories ({limit}); raise max_categories or leave it out"
                )
            continue
        plans[name] = sorted(values.values(), key=_category_key)
    if not plans:
        return table
    new_columns: list[str] = []
    layout: list[tuple[int, dict[Any, int] | None]] = []
    for i, name in enumerate(table.columns):
        categories = plans.get(name)
        if categories is None:
            new_columns.append(name)
            layout.append((i, None))
        else:
            new_columns.extend(f"{name}_{value}" for value in categories)
            layout.append((i, {_hashable(v): k for k, v in enumerate(categories)}))
    clashes = sorted({c for c in new_columns if new_columns.count(c) > 1})
    if clashes:
        raise DataError(
            f"encoding: the one-hot column name {clashes[0]!r} clashes with another column; "
            "rename that column first"
        )
    rows: list[list[Any]] = []
    for row in table.rows:
        out: list[Any] = []
        for i, lookup in layout:
            value = row[i]
            if lookup is None:
                out.append(value)
                continue
            cells = [0] * len(lookup)
            if value is not None:
                cells[lookup[_hashable(value)]] = 1
            out.extend(cells)
        rows.append(out)
    return Table(new_columns, rows)


_APPLY: dict[str, Callable[[Table, TransformOp], Table]] = {
    "clean": _clean,
    "normalize": _normalize,
    "scaling": _scaling,
    "encoding": _encoding,
}


def apply_op(table: Table, op: TransformOp) -> Table:
    """Apply one op to ``table`` and return the new table."""
    return _APPLY[op.op](table, op)


def _transform(params: TransformParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    table = pick_table("builtin.transform", inputs, params.input)
    for op in params.ops:
        table = apply_op(table, op)
    return table.to_json()


TRANSFORM = Builtin(
    name="builtin.transform",
    kind="transform",
    description="Apply table ops in order: clean (drop rows with nulls, then duplicates), "
    "normalize (min-max to [0, 1]), scaling (z-score), encoding (one-hot categorical columns).",
    params_model=TransformParams,
    work=_transform,
)
