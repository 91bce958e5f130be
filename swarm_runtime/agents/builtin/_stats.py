"""Descriptive statistics in pure Python that reproduce numpy's results.

Sums use :func:`math.fsum` (exactly rounded, so at least as accurate as numpy's
pairwise sums); quantiles, medians and histograms follow numpy's algorithms step
by step so that they agree bit for bit on the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "histogram",
    "linspace",
    "mean",
    "median",
    "pearson",
    "pearson_centred",
    "quantile",
    "variance",
]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of a non-empty sequence."""
    return math.fsum(values) / len(values)


def variance(values: Sequence[float], ddof: int = 0) -> float | None:
    """Two-pass variance with ``ddof`` delta degrees of freedom; None when undefined."""
    count = len(values)
    if count - ddof <= 0:
        return None
    centre = mean(values)
    return math.fsum((v - centre) * (v - centre) for v in values) / (count - ddof)


def _lerp(low: float, high: float, t: float) -> float:
    diff = high - low
    if t >= 0.5:
        return high - diff * (1 - t)
    return low + diff * t


def quantile(ordered: Sequence[float], q: float) -> float:
    """numpy's default ("linear") quantile of already sorted, non-empty values."""
    count = len(ordered)
    virtual = (count - 1) * q
    if virtual >= count - 1:
        return float(ordered[-1])
    if virtual < 0:
        return float(ordered[0])
    below = math.floor(virtual)
    return _lerp(float(ordered[below]), float(ordered[below + 1]), virtual - below)


def median(ordered: Sequence[float]) -> float:
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


def histogram(values: Sequence[float], bins: int) -> tuple[list[float], list[int]]:
    """``numpy.histogram(values, bins)``: equal-width bin edges and counts.

    The last bin is closed on the right; a constant (or empty) input gets the
    range ``value ± 0.5`` (``0..1`` when empty), exactly as numpy does.
    """
    if values:
        first, last = float(min(values)), float(max(values))
    else:
        first, last = 0.0, 1.0
    if first == last:
        first, last = first - 0.5, last + 0.5
    edges = linspace(first, last, bins + 1)
    counts = [0] * bins
    span = last - first
    top = bins - 1
    for raw in values:
        value = float(raw)
        index = int((value - first) / span * bins)
        if index == bins:
            index -= 1
        if value < edges[index]:
            index -= 1
        if index != top and value >= edges[index + 1]:
            index += 1
        counts[index] += 1
    return edges, counts


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation of paired values; None if either side is constant or n < 2."""
    count = len(xs)
    if count < 2 or min(xs) == max(xs) or min(ys) == max(ys):
        return None
    mx, my = mean(xs), mean(ys)
    dx = [x - mx for x in xs]
    dy = [y - my for y in ys]
    return pearson_centred(dx, dy)


def pearson_centred(dx: Sequence[float], dy: Sequence[float]) -> float | None:
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    divisor = math.sqrt(sxx * syy)
    if divisor == 0 or not math.isfinite(divisor):
        return None
    r = math.fsum(a * b for a, b in zip(dx, dy, strict=True)) / divisor
    return max(-1.0, min(1.0, r))
