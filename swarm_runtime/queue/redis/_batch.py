"""Group commit for Redis round trips: concurrent calls share one script call.

Items are appended to the *open* batch. The first caller that waits on a batch becomes its
leader: once fewer than ``max_inflight`` batches are on the wire it takes the open batch
and sends it in one call, while new items gather in the next batch. There is no background
task: whoever waits drives the batch, so a queue opened and closed in different tasks works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class _Batch(Generic[T, R]):
    __slots__ = ("done", "error", "event", "items", "leader", "results")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.results: Sequence[R] = ()
        self.error: BaseException | None = None
        self.done = False
        self.leader = False
        self.event = asyncio.Event()


class Batcher(Generic[T, R]):
    """Gathers items from concurrent callers and sends them ``max_items`` at a time.

    ``send(items)`` returns one result per item, in order; an exception it raises is
    raised to every caller of that batch.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int = 512,
        max_inflight: int = 1,
    ) -> None:
        self._send = send
        self._max_items = max_items
        self._max_inflight = max_inflight
        self._open: _Batch[T, R] = _Batch()
        self._inflight = 0
        self._slot = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def inflight(self) -> int:
        return self._inflight

    async def submit(self, item: T) -> R:
        """Add ``item`` to the open batch and return its result once the batch is sent."""
        batch = self._open
        index = len(batch.items)
        batch.items.append(item)
        if index + 1 >= self._max_items:
            self._open = _Batch()
        while not batch.done:
            if batch.leader:
                await batch.event.wait()
                continue
            batch.leader = True
            try:
                while self._inflight >= self._max_inflight:
                    slot = self._slot
                    await slot.wait()
            except BaseException:
                # Cancelled before sending: hand the lead to another caller of the batch.
                batch.leader = False
                event, batch.event = batch.event, asyncio.Event()
                event.set()
                raise
            if self._open is batch:
                self._open = _Batch()
            await self._run(batch)
        if batch.error is not None:
            raise batch.error
        return batch.results[index]

    async def _run(self, batch: _Batch[T, R]) -> None:
        self._inflight += 1
        self._idle.clear()
        try:
            # Shielded: the other callers of the batch depend on it, and a half-sent
            # batch is what cancelling here would produce. The send is bounded by the
            # queue's retry budget.
            with anyio.CancelScope(shield=True):
                batch.results = await self._send(batch.items)
        except Exception as exc:
            batch.error = exc
        finally:
            batch.done = True
            batch.event.set()
            self._inflight -= 1
            slot, self._slot = self._slot, asyncio.Event()
            slot.set()
            if self._inflight == 0:
                self._idle.set()

    async def drain(self) -> None:
        """Wait until no batch is on the wire."""
        await self._idle.wait()
