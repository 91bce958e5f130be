"""Descriptive statistics that reproduce numpy's results bit for bit.

Quantiles, medians and histograms follow numpy's algorithms step by step so that
they agree exactly on the same data. Quantiles and medians take any sorted sequence
(a Polars Series too: only two values are read); the histogram is vectorised.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import polars as pl

__all__ = ["histogram", "linspace", "median", "quantile"]


def _lerp(low: float, high: float, t: float) -> float:
    diff = high - low
    if t >= 0.5:
        return high - diff * (1 - t)
    return low + diff * t


def quantile(ordered: Sequence[float] | pl.Series, q: float) -> float:
    """numpy's default ("linear") quantile of already sorted, non-empty values."""
    count = len(ordered)
    virtual = (count - 1) * q
    if virtual >= count - 1:
        return float(ordered[-1])
    if virtual < 0:
        return float(ordered[0])
    below = math.floor(virtual)
    return _lerp(float(ordered[below]), float(ordered[below + 1]), virtual - below)


def median(ordered: Sequence[float] | pl.Series) -> float:
    """Median of sorted, non-empty values (the mean of the middle two when even)."""
    count = len(ordered)
    middle = count // 2
    if count % 2:
        return float(ordered[middle])
    return (float(ordered[middle - 1]) + float(ordered[middle])) / 2


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` with the endpoint, computed the same way."""
    if num == 1:
        return [start]
    div = num - 1
    step = (stop - start) / div
    if step == 0:
        points = [(i / div) * (stop - start) + start for i in range(num)]
    else:
        points = [i * step + start for i in range(num)]
    points[-1] = stop
    return points


_TINY = sys.float_info.min  # the smallest normal float


def _subnormal(series: pl.Series, edges: list[float]) -> bool:
    """True if a value or an edge is subnormal: Polars computes those as zero."""
    if any(0 < abs(edge) < _TINY for edge in edges):
        return True
    magnitude = series.abs()
    return bool(((magnitude > 0) & (magnitude < _TINY)).any())


def _count_in_python(
    values: list[float], edges: list[float], first: float, span: float, bins: int
) -> list[int]:
    """numpy's binning one value at a time, with Python's exact floats (subnormal data)."""
    counts = [0] * bins
    top = bins - 1
    for value in values:
        index = int((value - first) / span * bins)
        if index == bins:
            index -= 1
        if value < edges[index]:
            index -= 1
        if index != top and value >= edges[index + 1]:
            index += 1
        counts[index] += 1
    return counts


def histogram(values: Sequence[float] | pl.Series, bins: int) -> tuple[list[float], list[int]]:
    """``numpy.histogram(values, bins)``: equal-width bin edges and counts.

    The last bin is closed on the right; a constant (or empty) input gets the
    range ``value ± 0.5`` (``0..1`` when empty), exactly as numpy does. Vectorised
    with Polars, in numpy's own steps (same float operations, so the same bins); data
    with subnormal numbers, which Polars flushes to zero, is binned in Python.
    """
    series = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.Float64)
    series = series.cast(pl.Float64)
    if len(series):
        first, last = float(series.min()), float(series.max())  # type: ignore[arg-type]
    else:
        first, last = 0.0, 1.0
    if first == last:
        first, last = first - 0.5, last + 0.5
    edges = linspace(first, last, bins + 1)
    if not len(series):
        return edges, [0] * bins
    span = last - first
    if _subnormal(series, edges):
        return edges, _count_in_python(series.to_list(), edges, first, span, bins)
    index = ((series - first) / span * bins).cast(pl.Int64).clip(upper_bound=bins - 1)
    edge = pl.Series(edges)
    index = index - (series < edge.gather(index)).cast(pl.Int64)
    index = index + ((index != bins - 1) & (series >= edge.gather(index + 1))).cast(pl.Int64)
    counts = [0] * bins
    for position, count in index.value_counts().iter_rows():
        counts[int(position)] = int(count)
    return edges, counts
