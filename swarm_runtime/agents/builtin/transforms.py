"""``builtin.transform``: table operations applied in order (clean, normalize, scaling, encoding).

Each op is a name (``clean``) or a mapping with options (``{op: scaling, ddof: 1}``);
``columns`` limits any op to the listed columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, StrictInt, field_validator, model_validator

from ...errors import DataError
from ._base import Builtin, pick_table
from ._params import Columns, Params, UpstreamName
from ._table import select_columns
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


def _clean(frame: pl.LazyFrame, op: TransformOp) -> pl.LazyFrame:
    """Drop rows with a null (in ``columns``), then duplicate rows (keeping the first)."""
    names = select_columns(frame, op.columns, numeric=False, what="clean")
    if not names:
        return frame
    return frame.drop_nulls(subset=names).unique(subset=names, keep="first", maintain_order=True)


def _mean(col: pl.Expr) -> pl.Expr:
    """The mean, refined by a second pass (as exact as numpy's, whatever Polars' sum order)."""
    first = col.mean()
    return first + (col - first).mean()


#: Polars divides a column by a scalar through the scalar's reciprocal, which overflows for
#: a denominator below this (a subnormal spread): such a division is scaled first
_TINY = 2.0**-1000
_SCALE = 2.0**600  # a power of two: scaling is exact


def _over(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """``numerator / denominator``, right for a subnormal denominator too (no inf or NaN)."""
    return (
        pl.when(denominator.abs() < _TINY)
        .then((numerator * _SCALE) / (denominator * _SCALE))
        .otherwise(numerator / denominator)
    )


def _normalize(frame: pl.LazyFrame, op: TransformOp) -> pl.LazyFrame:
    """Min-max scaling of numeric columns to [0, 1]; a constant column becomes 0.0, nulls stay."""
    names = select_columns(frame, op.columns, numeric=True, what="normalize")
    exprs = []
    for name in names:
        col = pl.col(name).cast(pl.Float64)
        low, high = col.min(), col.max()
        exprs.append(
            pl.when(col.is_null())
            .then(None)
            .when(high == low)
            .then(0.0)
            .otherwise(_over(col - low, high - low))
            .alias(name)
        )
    return frame.with_columns(exprs) if exprs else frame


def _scaling(frame: pl.LazyFrame, op: TransformOp) -> pl.LazyFrame:
    """z-score of numeric columns (population std unless ``ddof: 1``); constant → 0.0."""
    names = select_columns(frame, op.columns, numeric=True, what="scaling")
    ddof = op.ddof or 0
    exprs = []
    for name in names:
        col = pl.col(name).cast(pl.Float64)
        centre = _mean(col)
        std = ((col - centre) ** 2).sum().truediv(col.count() - ddof).sqrt()
        usable = (col.count() > ddof) & (col.min() != col.max()) & (std > 0) & std.is_finite()
        exprs.append(
            pl.when(col.is_null())
            .then(None)
            .when(usable)
            .then(_over(col - centre, std))
            .otherwise(0.0)
            .alias(name)
        )
    return frame.with_columns(exprs) if exprs else frame


def _category_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def _label(value: Any) -> str:
    return str(value)


def _encoding(frame: pl.LazyFrame, op: TransformOp) -> pl.LazyFrame:
    """One-hot columns ``<column>_<value>`` (0/1) replace each categorical column in place.

    By default every column that is not numeric and has at most ``max_categories`` (50)
    distinct values is encoded; a null encodes as all zeros.
    """
    limit = op.max_categories or 50
    explicit = op.columns is not None
    names = select_columns(frame, op.columns, numeric=False, what="encoding")
    schema = frame.collect_schema()
    candidates = [n for n in names if explicit or not schema[n].is_numeric()]
    candidates = [n for n in candidates if schema[n] != pl.Null]
    if not candidates:
        return frame
    # distinct values, at most limit + 1 of each (enough to know a column has too many)
    found = frame.select(
        pl.col(n).drop_nulls().unique().head(limit + 1).implode().alias(n) for n in candidates
    ).collect()
    plans: dict[str, list[Any]] = {}
    for name in candidates:
        values = found[name][0].to_list()
        if len(values) > limit:
            if explicit:
                distinct = frame.select(pl.col(name).drop_nulls().n_unique()).collect().item()
                raise DataError(
                    f"encoding: column {name!r} has {distinct} distinct values, more than "
                    f"max_categories ({limit}); raise max_categories or leave it out"
                )
            continue
        plans[name] = sorted(values, key=_category_key)
    if not plans:
        return frame
    exprs: list[pl.Expr] = []
    new_columns: list[str] = []
    for name in schema.names():
        categories = plans.get(name)
        if categories is None:
            exprs.append(pl.col(name))
            new_columns.append(name)
            continue
        for value in categories:
            label = f"{name}_{_label(value)}"
            new_columns.append(label)
            exprs.append((pl.col(name) == value).fill_null(False).cast(pl.Int64).alias(label))
    clashes = sorted({c for c in new_columns if new_columns.count(c) > 1})
    if clashes:
        raise DataError(
            f"encoding: the one-hot column name {clashes[0]!r} clashes with another column; "
            "rename that column first"
        )
    return frame.select(exprs)


_APPLY: dict[str, Callable[[pl.LazyFrame, TransformOp], pl.LazyFrame]] = {
    "clean": _clean,
    "normalize": _normalize,
    "scaling": _scaling,
    "encoding": _encoding,
}


def apply_op(frame: pl.LazyFrame, op: TransformOp) -> pl.LazyFrame:
    """Apply one op to ``frame`` and return the new (lazy) table."""
    return _APPLY[op.op](frame, op)


def _transform(params: TransformParams, inputs: Mapping[str, Any]) -> pl.LazyFrame:
    frame = pick_table("builtin.transform", inputs, params.input)
    for op in params.ops:
        frame = apply_op(frame, op)
    return frame


TRANSFORM = Builtin(
    name="builtin.transform",
    kind="transform",
    description="Apply table ops in order: clean (drop rows with nulls, then duplicates), "
    "normalize (min-max to [0, 1]), scaling (z-score), encoding (one-hot categorical columns).",
    params_model=TransformParams,
    work=_transform,
)
