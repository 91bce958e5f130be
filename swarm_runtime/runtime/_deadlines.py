"""Request deadlines on the runtime's clock, with one timer task for all pending requests.

A request's waiter is a bare ``asyncio.Future`` rather than an ``anyio.Event`` plus a slot
for the reply: one object made, resolved and awaited per request instead of three, which
measured faster on the request round trip (the runtime's hot path; see
``benchmarks/bench_runtime.py``). The runtime runs on anyio's asyncio backend only.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Mapping
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock
from ..errors import RuntimeStateError

__all__ = ["Deadlines", "Waiter"]

Waiter = asyncio.Future[Mapping[str, Any] | None]


class Deadlines:
    """Resolves a request's waiter with ``None`` once its deadline on ``clock`` passes.

    A heap of deadlines and one timer task (:meth:`run`, in the runtime's task group)
    sleeping on the clock until the earliest; entries of requests that already finished
    are dropped lazily (the heap is rebuilt when it is more than twice the number of
    pending requests), so the cost per request is a heap push, not a timer made and
    cancelled. With a :class:`~swarm_runtime.clock.ManualClock`, request timeouts fire
    when a test advances the clock.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, str]] = []
        self._waiters: dict[str, tuple[Waiter, float]] = {}
        self._wake_at = math.inf
        self._sleep: anyio.CancelScope | None = None
        self._seq = 0

    def add(self, key: str, waiter: Waiter, timeout: float) -> None:
        deadline = self._clock.time() + timeout
        self._waiters[key] = (waiter, deadline)
        self._seq += 1
        heap = self._heap
        if len(heap) > 2 * len(self._waiters) + 8:
            heap[:] = [(d, i, k) for i, (k, (_, d)) in enumerate(self._waiters.items())]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (deadline, self._seq, key))
        if deadline < self._wake_at and self._sleep is not None:
            self._sleep.cancel()  # the timer sleeps past this deadline: wake it to re-arm

    def discard(self, key: str) -> None:
        self._waiters.pop(key, None)

    def get(self, key: str) -> Waiter | None:
        entry = self._waiters.get(key)
        return None if entry is None else entry[0]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The timer: expire due requests, sleep on the clock until the next deadline."""
        clock = self._clock
        task_status.started()
        while True:
            next_at = self._expire(clock.time())
            with anyio.CancelScope() as scope:
                self._sleep, self._wake_at = scope, next_at
                if next_at == math.inf:
                    await anyio.sleep_forever()
                else:
                    await clock.sleep(next_at - clock.time())
            self._sleep, self._wake_at = None, math.inf

    def _expire(self, now: float) -> float:
        """Resolve the waiters whose deadline passed; returns the next live deadline."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            entry = self._waiters.get(key)
            if entry is None or entry[1] != deadline:
                heapq.heappop(heap)
                continue
            if deadline > now:
                return deadline
            heapq.heappop(heap)
            waiter = entry[0]
            if not waiter.done():
                waiter.set_result(None)
        return math.inf

    def close(self) -> None:
        """The runtime stopped: every request still waiting fails with RuntimeStateError."""
        for waiter, _ in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(
                    RuntimeStateError("the runtime stopped before the reply to this request came")
                )
        self._waiters.clear()
        self._heap.clear()
