"""A bounded sliding window of numbers kept sorted, for cheap order statistics.

Recording only appends to a pending batch (O(1), it runs on the task-event hot path). The
batch is folded into the sorted list when the window is read or the batch fills: a small
batch by ``bisect.insort`` (O(log n) search and one memmove per value), a large one by a
single sort of the window. Never a sort per record. Median and percentiles are then O(1),
mean and stdev one O(n) pass, cached until the next record.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .._args import bad_argument

__all__ = ["SlidingWindow", "WindowStats", "percentile", "summarize"]


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Aggregates of one window of values."""

    count: int
    mean: float
    median: float
    stdev: float  # sample standard deviation; 0.0 with fewer than two values
    min: float
    max: float
    p95: float
    p99: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, linearly interpolated (numpy's default)."""
    n = len(ordered)
    if n == 0:
        raise ValueError("percentile of no values")
    if n == 1:
        return ordered[0]
    position = q * (n - 1)
    low = math.floor(position)
    high = min(low + 1, n - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarize(ordered: Sequence[float]) -> WindowStats | None:
    """Aggregate already-sorted values; None when there are none."""
    n = len(ordered)
    if n == 0:
        return None
    mean = math.fsum(ordered) / n
    if n > 1:
        variance = math.fsum((x - mean) ** 2 for x in ordered) / (n - 1)
        stdev = math.sqrt(variance)
    else:
        stdev = 0.0
    return WindowStats(
        count=n,
        mean=mean,
        median=percentile(ordered, 0.5),
        stdev=stdev,
        min=ordered[0],
        max=ordered[-1],
        p95=percentile(ordered, 0.95),
        p99=percentile(ordered, 0.99),
    )


class SlidingWindow:
    """The last ``size`` values, in arrival order and in sorted order."""

    __slots__ = ("_arrivals", "_cache", "_pending", "_size", "_sorted")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise bad_argument("window size", size, "an int >= 1")
        self._size = size
        self._arrivals: deque[float] = deque(maxlen=size)
        self._sorted: list[float] = []
        self._pending: list[float] = []
        self._cache: WindowStats | None = None

    def __len__(self) -> int:
        return min(self._size, len(self._arrivals) + len(self._pending))

    def add(self, value: float) -> None:
        """Add a value; the oldest leaves once the window is full."""
        pending = self._pending
        pending.append(value)
        self._cache = None
        if len(pending) >= self._size:
            self._fold()

    def _fold(self) -> None:
        pending, self._pending = self._pending, []
        arrivals = self._arrivals
        if len(pending) * 8 >= self._size:  # a big batch: one sort beats many insorts
            arrivals.extend(pending)
            self._sorted = sorted(arrivals)
            return
        ordered = self._sorted
        for value in pending:
            if len(arrivals) == self._size:
                del ordered[bisect_left(ordered, arrivals[0])]
            arrivals.append(value)
            insort(ordered, value)

    def stats(self) -> WindowStats | None:
        """Aggregates of the values in the window (cached until the next ``add``)."""
        if self._cache is None:
            if self._pending:
                self._fold()
            self._cache = summarize(self._sorted)
        return self._cache

    def sorted_values(self) -> list[float]:
        if self._pending:
            self._fold()
        return list(self._sorted)
