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

from pydantic import Field, StrictFloat, StrictInt, field_validator, model_validator

from ._base import Builtin, pick_table
from ._params import Columns, Params, UpstreamName
from ._stats import histogram, mean, median, pearson_centred, quantile, variance
from ._table import Table, select_columns
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


def correlation(table: Table, columns: list[str] | None = None) -> dict[str, Any]:
    """Pearson correlation matrix of the numeric columns, pairwise-complete like pandas."""
    names = select_columns(table, columns, numeric=True, what="correlation")
    data = [table.column(name) for name in names]
    complete = [all(v is not None for v in col) for col in data]
    centred: list[list[float] | None] = []
    for col, full in zip(data, complete, strict=True):
        if full and len(col) >= 2 and min(col) != max(col):
            centre = mean(col)
            centred.append([v - centre for v in col])
        else:
            centred.append(None)
    size = len(names)
    matrix: list[list[float | None]] = [[None] * size for _ in range(size)]
    for i in range(size):
        for j in range(i, size):
            if complete[i] and complete[j]:
                ci, cj = centred[i], centred[j]
                r = None if ci is None or cj is None else pearson_centred(ci, cj)
            else:
                pairs = [
                    (x, y)
                    for x, y in zip(data[i], data[j], strict=True)
                    if x is not None and y is not None
                ]
                r = _pairwise([p[0] for p in pairs], [p[1] for p in pairs])
            if i == j and r is not None:
                r = 1.0
            matrix[i][j] = matrix[j][i] = _finite(r)
    return {"method": "pearson", "columns": names, "matrix": matrix}


def _pairwise(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return None
    mx, my = mean(xs), mean(ys)
    return pearson_centred([x - mx for x in xs], [y - my for y in ys])


def distribution(
    table: Table,
    columns: list[str] | None = None,
    *,
    bins: int = 10,
    quantiles: list[float] | None = None,
    ddof: int = 1,
) -> dict[str, Any]:
    """Per numeric column: count, nulls, mean, std, min, max, median, quantiles, histogram."""
    qs = [0.25, 0.5, 0.75, 0.95] if quantiles is None else quantiles
    out: dict[str, Any] = {}
    for name in select_columns(table, columns, numeric=True, what="distribution"):
        raw = table.column(name)
        values = sorted(v for v in raw if v is not None)
        count = len(values)
        edges, counts = histogram(values, bins)
        stats: dict[str, Any] = {
            "count": count,
            "nulls": len(raw) - count,
            "mean": _finite(mean(values)) if count else None,
            "std": None,
            "min": values[0] if count else None,
            "max": values[-1] if count else None,
            "median": median(values) if count else None,
            "quantiles": {quantile_key(q): quantile(values, q) if count else None for q in qs},
            "histogram": {"edges": edges, "counts": counts},
        }
        var = variance(values, ddof) if count else None
        if var is not None and count and values[0] == values[-1]:
            var = 0.0  # a constant column: exactly zero, whatever the rounding of the mean
        stats["std"] = _finite(math.sqrt(var)) if var is not None else None
        out[name] = stats
    return out


def _analyze(params: AnalyzeParams, inputs: Mapping[str, Any]) -> dict[str, Any]:
    table = pick_table("builtin.analyze", inputs, params.input)
    result: dict[str, Any] = {"rows": len(table.rows)}
    for spec in params.metrics:
        if spec.metric == "correlation":
            result["correlation"] = correlation(table, spec.columns)
        else:
            result["distribution"] = distribution(
                table,
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
