"""The group-commit batcher behind the Redis backend's publish, subscribe and ack calls."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from swarm_runtime.queue.redis._batch import Batcher


class FakeRedis:
    """A send function that records its batches and answers when the test lets it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.go = anyio.Event()
        self.unclaimed: list[tuple[list[int], Sequence[int] | None]] = []
        self.fail: Exception | None = None

    async def send(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await self.go.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 for item in items]

    async def on_unclaimed(
        self, items: list[int], results: Sequence[int] | None, error: BaseException | None
    ) -> None:
        self.unclaimed.append((items, results))


async def test_concurrent_calls_share_one_send_and_get_their_own_results() -> None:
    """Callers arriving together are sent as one batch; each gets the result for its item."""
    fake = FakeRedis()
    fake.go.set()
    batcher: Batcher[int, int] = Batcher(fake.send)
    results: dict[int, int] = {}

    async def call(item: int) -> None:
        results[item] = await batcher.submit(item)

    async with anyio.create_task_group() as tg:
        for item in range(10):
            tg.start_soon(call, item)
    assert fake.batches == [list(range(10))]
    assert results == {item: item * 10 for item in range(10)}


async def test_items_arriving_while_a_batch_is_on_the_wire_form_the_next_one() -> None:
    """With one batch in flight, newcomers gather into the next batch, sent after it."""
    fake = FakeRedis()
    batcher: Batcher[int, int] = Batcher(fake.send)
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.submit, 1)
        await anyio.wait_all_tasks_blocked()
        for item in (2, 3, 4):
            tg.start_soon(batcher.submit, item)
        await anyio.wait_all_tasks_blocked()
        assert fake.batches == [[1]]
        fake.go.set()
    assert fake.batches == [[1], [2, 3, 4]]


async def test_a_failed_send_raises_in_every_caller() -> None:
    """An error of the send reaches every caller of the batch."""
    fake = FakeRedis()
    fake.fail = RuntimeError("redis went away")
    batcher: Batcher[int, int] = Batcher(fake.send)
    errors: list[BaseException] = []

    async def call(item: int) -> None:
        try:
            await batcher.submit(item)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for item in range(3):
            tg.start_soon(call, item)
        await anyio.wait_all_tasks_blocked()
        fake.go.set()
    assert [str(e) for e in errors] == ["redis went away"] * 3


async def test_offered_items_ride_with_a_led_batch_and_their_results_go_unclaimed() -> None:
    """offer() adds an item only to a batch someone will send; its result is reported."""
    fake = FakeRedis()
    batcher: Batcher[int, int] = Batcher(fake.send, on_unclaimed=fake.on_unclaimed)
    assert batcher.offer(1) is False  # nobody would send it
    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.submit, 2)
        await anyio.wait_all_tasks_blocked()  # 2 is on the wire
        tg.start_soon(batcher.submit, 3)
        await anyio.wait_all_tasks_blocked()  # 3 leads the next batch
        assert batcher.offer(4) is True
        fake.go.set()
    assert fake.batches == [[2], [3, 4]]
    assert fake.unclaimed == [([4], [40])]


async def test_a_cancelled_caller_leaves_its_result_unclaimed() -> None:
    """The result of a caller cancelled while its batch was on the wire is reported."""
    fake = FakeRedis()
    batcher: Batcher[int, int] = Batcher(fake.send, on_unclaimed=fake.on_unclaimed)
    scope = anyio.CancelScope()

    async def cancelled() -> None:
        with scope:
            await batcher.submit(2)

    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.submit, 1)
        tg.start_soon(cancelled)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        fake.go.set()
    assert fake.batches == [[1, 2]]
    assert fake.unclaimed == [([2], [20])]


async def test_a_leader_cancelled_before_sending_hands_over() -> None:
    """If the caller due to send a batch is cancelled while waiting its turn, another
    caller of the batch sends it; the cancelled item's result goes unclaimed."""
    fake = FakeRedis()
    batcher: Batcher[int, int] = Batcher(fake.send, on_unclaimed=fake.on_unclaimed)
    scope = anyio.CancelScope()
    results: list[int] = []

    async def leader() -> None:
        with scope:
            await batcher.submit(2)

    async def follower() -> None:
        results.append(await batcher.submit(3))

    async with anyio.create_task_group() as tg:
        tg.start_soon(batcher.submit, 1)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(follower)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        fake.go.set()
    assert fake.batches == [[1], [2, 3]]
    assert results == [30]
    assert fake.unclaimed == [([2], [20])]


async def test_drain_sends_a_batch_nobody_leads() -> None:
    """drain() sends items left behind by callers that went away, then waits for the wire."""
    fake = FakeRedis()
    fake.go.set()
    batcher: Batcher[int, int] = Batcher(fake.send, on_unclaimed=fake.on_unclaimed)
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await batcher.submit(5)
    await batcher.drain()
    assert fake.batches == [[5]]
    assert fake.unclaimed == [([5], [50])]
