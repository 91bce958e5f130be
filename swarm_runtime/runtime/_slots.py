"""A concurrency limit that can be resized while tasks hold it (for the self-optimizer)."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["Slots"]


class Slots:
    """``capacity`` permits; ``resize`` takes effect at once for growth, as permits return
    for shrinkage. Waiters are served first come, first served."""

    __slots__ = ("_capacity", "_in_use", "_waiters")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._in_use = 0
        self._waiters: deque[anyio.Event] = deque()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def free(self) -> int:
        """Permits an ``acquire`` would get now without waiting."""
        return 0 if self._waiters else max(0, self._capacity - self._in_use)

    def try_acquire(self) -> bool:
        """Take a permit if one is free now (nobody waiting ahead); never waits."""
        if self._in_use < self._capacity and not self._waiters:
            self._in_use += 1
            return True
        return False

    async def acquire(self) -> None:
        if self._in_use < self._capacity and not self._waiters:
            self._in_use += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the permit was handed to us: pass it on
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        self._in_use -= 1
        self._serve()

    def resize(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._capacity = capacity
        self._serve()

    def _serve(self) -> None:
        while self._waiters and self._in_use < self._capacity:
            self._in_use += 1
            self._waiters.popleft().set()
