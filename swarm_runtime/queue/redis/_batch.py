"""Group commit for Redis round trips: concurrent calls share one script call.

Items are appended to the *open* batch. The first caller that waits on a batch becomes its
leader: once fewer than ``max_inflight`` batches are on the wire it takes the open batch
and sends it in one call, while new items gather in the next batch. There is no background
task: whoever waits drives the batch, so a queue opened and closed in different tasks works.

:meth:`Batcher.offer` adds an item nobody waits for; it is accepted only into a batch that
already has a leader, so it is sure to be sent. Results nobody collects (offered items, and
those of callers cancelled while they waited) go to ``on_unclaimed``, so that, say, messages
leased for a caller that is gone can be handed back.
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
    __slots__ = ("done", "error", "event", "items", "leader", "results", "unclaimed")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.unclaimed: list[int] = []
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
        on_unclaimed: Callable[[list[T], Sequence[R] | None, BaseException | None], Awaitable[None]]
        | None = None,
    ) -> None:
        self._send = send
        self._on_unclaimed = on_unclaimed
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

    def offer(self, item: T) -> bool:
        """Add ``item`` without waiting, if the open batch has a leader that will send it.

        Returns False (and adds nothing) otherwise: then :meth:`submit` it.
        """
        batch = self._open
        if not batch.leader or len(batch.items) >= self._max_items:
            return False
        batch.unclaimed.append(len(batch.items))
        batch.items.append(item)
        return True

    async def submit(self, item: T) -> R:
        """Add ``item`` to the open batch and return its result once the batch is sent."""
        batch = self._open
        index = len(batch.items)
        batch.items.append(item)
        if index + 1 >= self._max_items:
            self._open = _Batch()
        while not batch.done:
            if batch.leader:
                try:
                    await batch.event.wait()
                except BaseException:
                    await self._abandon(batch, index)
                    raise
                continue
            batch.leader = True
            try:
                if self._inflight < self._max_inflight:
                    # Let callers already woken in this loop iteration join the batch.
                    await asyncio.sleep(0)
                while self._inflight >= self._max_inflight:
                    slot = self._slot
                    await slot.wait()
            except BaseException:
                # Cancelled before sending: hand the lead to another caller of the batch.
                batch.leader = False
                event, batch.event = batch.event, asyncio.Event()
                event.set()
                await self._abandon(batch, index)
                raise
            if self._open is batch:
                self._open = _Batch()
            await self._run(batch)
        if batch.error is not None:
            raise batch.error
        return batch.results[index]

    async def _abandon(self, batch: _Batch[T, R], index: int) -> None:
        """The caller of item ``index`` was cancelled: its result goes unclaimed."""
        if not batch.done:
            batch.unclaimed.append(index)
        elif batch.error is None and self._on_unclaimed is not None:
            with anyio.CancelScope(shield=True):
                await self._on_unclaimed([batch.items[index]], [batch.results[index]], None)

    async def _run(self, batch: _Batch[T, R]) -> None:
        self._inflight += 1
        self._idle.clear()
        try:
            # Shielded: the other callers of the batch depend on it, and a half-sent
            # batch is what cancelling here would produce. The send is bounded by the
            # queue's retry budget.
            with anyio.CancelScope(shield=True):
                try:
                    batch.results = await self._send(batch.items)
                except Exception as exc:
                    batch.error = exc
                if batch.unclaimed and self._on_unclaimed is not None:
                    error = batch.error
                    await self._on_unclaimed(
                        [batch.items[i] for i in batch.unclaimed],
                        None if error else [batch.results[i] for i in batch.unclaimed],
                        error,
                    )
        finally:
            batch.done = True
            batch.event.set()
            self._inflight -= 1
            slot, self._slot = self._slot, asyncio.Event()
            slot.set()
            if self._inflight == 0:
                self._idle.set()

    async def drain(self) -> None:
        """Send what is left in the open batch, and wait until no batch is on the wire."""
        batch = self._open
        if batch.items and not batch.leader:
            self._open = _Batch()
            batch.leader = True
            while self._inflight >= self._max_inflight:
                await self._slot.wait()
            await self._run(batch)
        await self._idle.wait()
