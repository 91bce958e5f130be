"""``builtin.analyze``: correlation (Pearson matrix) and distribution statistics of a table.

The result has one key per requested metric::

    {"rows": 480,
     "correlation": {"method": "pearson", "columns": [...], "matrix": [[1.0, 0.3], ...]},
     "distribution": {"units": {"count": 470, "nulls": 10, "mean": ..., "std": ...,
                                "min": ..., "max": ..., "median": ...,
                                "quantiles": {"p25": ..., "p50": ..., "p75": ..., "p95": ...},
                                "histogram": {"edges": [...], "counts": [...]}}}}

Numbers agree with pandas / numpy: the correlation uses pairwise-complete rows like
``DataFrame.corr()`` (null where undefined: a constant column or fewer than two
rows); ``std`` is the sample standard deviation (``ddof: 1``) like ``Series.std()``;
quantiles interpolate linearly like ``numpy.quantile``; the histogram is
``numpy.histogram(values, bins)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import polars as pl
from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from ._base import Builtin, pick_table
from ._params import Columns, Params, UpstreamName
from ._stats import histogram, median, quantile
from ._table import select_columns
from ._validation import did_you_mean

__all__ = ["ANALYZE", "METRICS", "AnalyzeParams", "MetricSpec", "correlation", "distribution"]

MetricName = Literal["correlation", "distribution"]
METRICS: tuple[str, ...] = ("correlation", "distribution")
_OPTIONS: dict[str, frozenset[str]] = {
    "correlation": frozenset({"columns"}),
    "distribution": frozenset({"columns", "bins", "quantiles", "ddof"}),
}
Quantile = Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]


class MetricSpec(Params):
    """One metric with its options; a bare name in YAML means default options."""

    metric: MetricName
    columns: Columns = None
    bins: Annotated[StrictInt, Field(ge=1, le=1000)] = Field(
        default=10, description="distribution: histogram bins"
    )
    quantiles: Annotated[list[Quantile], Field(min_length=1)] = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 0.95],
        description="distribution: quantiles to report, as fractions (0.95 → p95)",
    )
    ddof: Annotated[StrictInt, Field(ge=0, le=1)] = Field(
        default=1, description="distribution: 1 = sample std (default, like pandas), 0 = population"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in METRICS:
                raise ValueError(
                    f"unknown metric {value!r}{did_you_mean(value, METRICS)}; "
                    f"expected one of: {', '.join(METRICS)}"
                )
            return {"metric": value}
        if isinstance(value, Mapping) and isinstance(value.get("metric"), str):
            allowed = _OPTIONS.get(value["metric"])
            if allowed is not None:
                extra = sorted(k for k in value if k != "metric" and k not in allowed)
                if extra and all(k in MetricSpec.model_fields for k in extra):
                    raise ValueError(
                        f"option {extra[0]!r} does not apply to metric {value['metric']!r} "
                        f"(its options: {', '.join(sorted(allowed))})"
                    )
            return value
        if isinstance(value, Mapping):
            raise ValueError(f"a metric mapping needs 'metric': one of {', '.join(METRICS)}")
        raise ValueError(
            f"expected a metric name ({', '.join(METRICS)}) or a mapping "
            f"{{metric: NAME, ...options}}, got {type(value).__name__}"
        )


class AnalyzeParams(Params):
    metrics: Annotated[list[MetricSpec], Field(min_length=1)]
    input: UpstreamName = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _one_metric(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def quantile_key(q: float) -> str:
    """``0.25`` → ``p25``, ``0.999`` → ``p99.9``."""
    return f"p{round(q * 100, 10):g}"


def _refined_mean(col: pl.Expr) -> pl.Expr:
    first = col.mean()
    return first + (col - first).mean()


def correlation(frame: pl.LazyFrame, columns: list[str] | None = None) -> dict[str, Any]:
    """Pearson correlation matrix of the numeric columns, pairwise-complete like pandas."""
    names = select_columns(frame, columns, numeric=True, what="correlation")
    size = len(names)
    matrix: list[list[float | None]] = [[None] * size for _ in range(size)]
    if not size:
        return {"method": "pearson", "columns": names, "matrix": matrix}
    pairs = [(i, j) for i in range(size) for j in range(i, size)]
    exprs: list[pl.Expr] = []
    for k, (i, j) in enumerate(pairs):
        both = pl.col(names[i]).is_not_null() & pl.col(names[j]).is_not_null()
        x = pl.col(names[i]).cast(pl.Float64).filter(both)
        y = pl.col(names[j]).cast(pl.Float64).filter(both)
        dx, dy = x - _refined_mean(x), y - _refined_mean(y)
        exprs += [
            x.count().alias(f"n{k}"),
            (x.min() == x.max()).alias(f"cx{k}"),
            (y.min() == y.max()).alias(f"cy{k}"),
            (dx * dx).sum().alias(f"xx{k}"),
            (dy * dy).sum().alias(f"yy{k}"),
            (dx * dy).sum().alias(f"xy{k}"),
        ]
    sums = frame.select(exprs).collect().row(0, named=True)
    for k, (i, j) in enumerate(pairs):
        r: float | None = None
        if sums[f"n{k}"] >= 2 and not sums[f"cx{k}"] and not sums[f"cy{k}"]:
            divisor = math.sqrt(sums[f"xx{k}"] * sums[f"yy{k}"])
            if divisor != 0 and math.isfinite(divisor):
                r = max(-1.0, min(1.0, sums[f"xy{k}"] / divisor))
        if i == j and r is not None:
            r = 1.0
        matrix[i][j] = matrix[j][i] = _finite(r)
    return {"method": "pearson", "columns": names, "matrix": matrix}


def distribution(
    frame: pl.LazyFrame,
    columns: list[str] | None = None,
    *,
    bins: int = 10,
    quantiles: list[float] | None = None,
    ddof: int = 1,
) -> dict[str, Any]:
    """Per numeric column: count, nulls, mean, std, min, max, median, quantiles, histogram."""
    qs = [0.25, 0.5, 0.75, 0.95] if quantiles is None else quantiles
    names = select_columns(frame, columns, numeric=True, what="distribution")
    out: dict[str, Any] = {}
    if not names:
        return out
    moments = []
    for name in names:
        col = pl.col(name).cast(pl.Float64)
        centre = _refined_mean(col)
        moments += [
            pl.col(name).null_count().alias(f"{name}\0nulls"),
            centre.alias(f"{name}\0mean"),
            ((col - centre) ** 2).sum().alias(f"{name}\0ss"),
        ]
    # one pass over the table: the moments and every column's sorted values
    sorted_values = [pl.col(n).drop_nulls().sort().implode().alias(f"{n}\0sorted") for n in names]
    collected = frame.select(moments + sorted_values).collect()
    found = collected.select(m.meta.output_name() for m in moments).row(0, named=True)
    for name in names:
        ordered = collected[f"{name}\0sorted"][0]
        count = len(ordered)
        edges, counts = histogram(ordered, bins)
        first = ordered[0] if count else None
        last = ordered[-1] if count else None
        stats: dict[str, Any] = {
            "count": count,
            "nulls": found[f"{name}\0nulls"],
            "mean": _finite(found[f"{name}\0mean"]) if count else None,
            "std": None,
            "min": first,
            "max": last,
            "median": median(ordered) if count else None,
            "quantiles": {quantile_key(q): quantile(ordered, q) if count else None for q in qs},
            "histogram": {"edges": edges, "counts": counts},
        }
        if count - ddof > 0:
            var = found[f"{name}\0ss"] / (count - ddof)
            if first == last:
                var = 0.0  # a constant column: exactly zero, whatever the rounding of the mean
            stats["std"] = _finite(math.sqrt(var))
        out[name] = stats
    return out


def _analyze(params: AnalyzeParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    frame = pick_table("builtin.analyze", inputs, params.input)
    result: dict[str, Any] = {"rows": frame.select(pl.len()).collect().item()}
    for spec in params.metrics:
        if spec.metric == "correlation":
            result["correlation"] = correlation(frame, spec.columns)
        else:
            result["distribution"] = distribution(
                frame,
                spec.columns,
                bins=spec.bins,
                quantiles=[float(q) for q in spec.quantiles],
                ddof=spec.ddof,
            )
    return result


ANALYZE = Builtin(
    name="builtin.analyze",
    kind="analysis",
    description="Analyse a table: correlation (Pearson matrix of numeric columns) and "
    "distribution (count, mean, std, min, max, median, quantiles, histogram per numeric column).",
    params_model=AnalyzeParams,
    work=_analyze,
)
