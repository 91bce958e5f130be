"""Request deadlines with one timer for all pending requests, not one timer each."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping
from typing import Any

__all__ = ["Deadlines", "Waiter"]

Waiter = asyncio.Future[Mapping[str, Any] | None]


class Deadlines:
    """Resolves a request's waiter with ``None`` once its deadline passes.

    A heap of deadlines and a single loop timer armed for the earliest one; entries of
    requests that already finished are dropped lazily (the heap is rebuilt when it is
    more than twice the number of pending requests), so the cost per request is a
    heap push instead of a timer handle created and cancelled.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._waiters: dict[str, tuple[Waiter, float]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._seq = 0

    def add(self, key: str, waiter: Waiter, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._waiters[key] = (waiter, deadline)
        self._seq += 1
        heap = self._heap
        if len(heap) > 2 * len(self._waiters) + 8:
            heap[:] = [(d, i, k) for i, (k, (_, d)) in enumerate(self._waiters.items())]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (deadline, self._seq, key))
        if self._timer is None or deadline < self._timer_at:
            self._arm(loop, deadline)

    def discard(self, key: str) -> None:
        self._waiters.pop(key, None)

    def get(self, key: str) -> Waiter | None:
        entry = self._waiters.get(key)
        return None if entry is None else entry[0]

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            entry = self._waiters.get(key)
            if entry is None or entry[1] != deadline:
                heapq.heappop(heap)
                continue
            if deadline > now:
                self._arm(loop, deadline)
                return
            heapq.heappop(heap)
            waiter = entry[0]
            if not waiter.done():
                waiter.set_result(None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
