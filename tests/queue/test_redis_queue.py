"""The redis:// backend beyond the conformance suite: several queues (processes) on one prefix,
dead consumers, dead letters, key clean-up, ordering and wake-ups."""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.message import build_message
from swarm_runtime.queue.redis import RedisQueue

from ..conftest import REDIS_URL, require_redis
from .redis_helpers import OpenQueue, delete_keys, keys, new_prefix

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix() -> str:
    return new_prefix()


@pytest.fixture
async def open_queue(prefix: str) -> AsyncIterator[OpenQueue]:
    """Open redis:// queues that share one private prefix (like processes sharing Redis)."""
    require_redis()
    opened: list[sr.MessageQueue] = []

    async def factory(**options: Any) -> sr.MessageQueue:
        options.setdefault("prefix", prefix)
        queue = await sr.MessageQueue.open(REDIS_URL, **options)
        opened.append(queue)
        return queue

    yield factory
    for queue in opened:
        await queue.close()
    await delete_keys(prefix)


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    require_redis()
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_two_queues_share_the_work(open_queue: OpenQueue) -> None:
    """Two queues on one prefix split the messages: each is delivered once, to one of them."""
    q1, q2 = await open_queue(), await open_queue()
    ids = {await q1.publish("jobs", i) for i in range(100)}
    seen: list[str] = []
    while True:
        batch = await q1.subscribe("jobs", batch_size=10) + await q2.subscribe("jobs", 10)
        if not batch:
            break
        seen += [m.id for m in batch]
    assert sorted(seen) == sorted(ids)
    assert (await q2.stats("jobs")).leased == 100


async def test_competing_queues_in_parallel_deliver_each_message_once(
    open_queue: OpenQueue,
) -> None:
    """Consumers on two queues racing for one topic get every message exactly once."""
    q1, q2 = await open_queue(), await open_queue()
    got: list[int] = []

    async def consume(q: sr.MessageQueue) -> None:
        while len(got) < 300:
            for message in await q.subscribe("jobs", batch_size=7, timeout=0.5):
                got.append(message.payload)
                assert await q.acknowledge(message.id)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for q in (q1, q2, q1, q2):
                tg.start_soon(consume, q)
            for i in range(300):
                await (q1 if i % 2 else q2).publish("jobs", i)
    assert sorted(got) == list(range(300))
    assert await q1.depth("jobs") == 0


async def test_dead_consumer_lease_expires_and_other_queue_gets_it(
    open_queue: OpenQueue, clock: ManualClock
) -> None:
    """A consumer that dies holding a lease: after the lease the other process gets the
    message with attempts + 1."""
    q1, q2 = await open_queue(clock=clock), await open_queue(clock=clock)
    mid = await q1.publish("jobs", "work")
    [first] = await q1.subscribe("jobs", lease=5)
    await q1.close()  # dies without acking
    assert await q2.subscribe("jobs") == []
    clock.advance(6)
    [again] = await q2.subscribe("jobs", lease=5)
    assert (again.id, first.attempts, again.attempts) == (mid, 1, 2)
    assert await q2.acknowledge(mid) is True


CHILD = """
import asyncio, sys
import swarm_runtime as sr

async def main():
    q = await sr.MessageQueue.open(sys.argv[1], prefix=sys.argv[2])
    [m] = await q.subscribe("jobs", lease=1.0, timeout=20)
    print(m.id, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_killed_process_lease_is_taken_over(open_queue: OpenQueue, prefix: str) -> None:
    """A worker process SIGKILLed while holding a message: a live process gets it after the
    lease (real clock), attempts + 1."""
    q = await open_queue()
    mid = await q.publish("jobs", {"task": 1})
    process = await anyio.open_process([sys.executable, "-c", CHILD, REDIS_URL, prefix])
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = b""
            async for chunk in process.stdout:
                line += chunk
                if b"\n" in line:
                    break
        assert line.strip().decode() == mid
        assert (await q.stats("jobs")).leased == 1
    finally:
        process.kill()
        await process.wait()
        await process.aclose()
    with anyio.fail_after(20):
        [again] = await q.subscribe("jobs", timeout=None)
    assert (again.id, again.attempts) == (mid, 2)


async def test_dead_letter_after_max_deliveries_carries_the_error(
    open_queue: OpenQueue, raw: aioredis.Redis, prefix: str
) -> None:
    """Nacked on every delivery (by two processes), a message ends in the DLQ stream with
    the last error and its attempts."""
    q1, q2 = await open_queue(max_attempts=2), await open_queue(max_attempts=2)
    mid = await q1.publish("jobs", {"k": 1})
    [m] = await q1.subscribe("jobs")
    assert await q1.nack(m.id, error="boom 1") == "requeued"
    [m] = await q2.subscribe("jobs")
    assert m.last_error == "boom 1"
    assert await q2.nack(m.id, error="boom 2") == "dead_lettered"
    [dead] = await q1.dead_letters("jobs")
    assert (dead.id, dead.attempts, dead.last_error, dead.payload) == (mid, 2, "boom 2", {"k": 1})
    [(_, fields)] = await raw.xrange(f"{prefix}:q:t:jobs:dlq")
    assert fields[b"x"] == b"boom 2"
    assert await keys(raw, prefix) == [f"{prefix}:q:t:jobs:dlq", f"{prefix}:q:topics"]


async def test_lease_expiry_on_the_last_attempt_dead_letters(
    open_queue: OpenQueue, clock: ManualClock
) -> None:
    """Whichever process looks next dead-letters a message whose last lease expired (the
    message's own max_attempts decides, whatever the processes' defaults)."""
    q1, q2 = await open_queue(clock=clock), await open_queue(clock=clock)
    await q1.publish("jobs", "x", max_attempts=1)
    assert len(await q1.subscribe("jobs", lease=5)) == 1
    clock.advance(6)
    assert (await q2.stats("jobs")).dead == 1
    [dead] = await q2.dead_letters("jobs")
    assert dead.last_error == "lease expired without ack on attempt 1 of 1"


async def test_no_keys_left_once_everything_is_settled(
    open_queue: OpenQueue, raw: aioredis.Redis, prefix: str, clock: ManualClock
) -> None:
    """Acks, purges and a purged DLQ leave no key behind: nothing grows with throughput."""
    q = await open_queue(clock=clock, max_attempts=1)
    for priority in (0, 3, -2, 3):
        await q.publish("a", priority, priority=priority)
    await q.publish("a", "later", delay=50)
    await q.publish("b", "x", headers={"h": 1}, max_attempts=3)
    assert f"{prefix}:q:ix" in await keys(raw, prefix)
    batch = await q.subscribe("a", batch_size=3)
    assert await q.nack(batch[0].id, error="dies") == "dead_lettered"
    assert await q.release(batch[1].id) is True
    [b] = await q.subscribe("b")
    assert await q.nack(b.id, delay=10) == "requeued"
    assert await q.acknowledge(batch[2].id) is True
    assert await q.purge("a") == 3
    clock.advance(11)
    [b] = await q.subscribe("b")
    assert await q.acknowledge(b.id) is True
    assert await keys(raw, prefix) == [
        f"{prefix}:q:t:a:dlq",
        f"{prefix}:q:topics",
    ]
    assert await q.replay("a") == 1
    assert f"{prefix}:q:t:a:dlq" not in await keys(raw, prefix)
    [m] = await q.subscribe("a")
    assert await q.nack(m.id) == "dead_lettered"
    assert await q.purge_dead_letters("a") == 1
    assert await keys(raw, prefix) == []
    assert await q.topics() == []


async def test_acked_entries_are_trimmed_from_the_stream(
    open_queue: OpenQueue, raw: aioredis.Redis, prefix: str
) -> None:
    """Acked entries leave the stream; an older message still leased holds back the trim
    only of what comes after it, and the stream goes once everything is settled."""
    q = await open_queue()
    for i in range(10):
        await q.publish("t", i)
    stream = f"{prefix}:q:t:t:s:0"
    [held] = await q.subscribe("t")
    for m in await q.subscribe("t", batch_size=4):
        await q.acknowledge(m.id)
    assert await raw.xlen(stream) == 10  # held + 4 acked behind it + 5 never delivered
    await q.acknowledge(held.id)
    assert await raw.xlen(stream) == 5
    for m in await q.subscribe("t", batch_size=10):
        await q.acknowledge(m.id)
    assert await raw.exists(stream) == 0


async def test_requeued_message_keeps_its_place_within_its_priority(
    open_queue: OpenQueue,
) -> None:
    """A nacked message comes back before newer messages of its priority, after higher ones."""
    q = await open_queue()
    a = await q.publish("t", "a")
    b = await q.publish("t", "b")
    [m] = await q.subscribe("t")
    assert m.id == a
    c = await q.publish("t", "c")
    d = await q.publish("t", "d", priority=5)
    assert await q.nack(a) == "requeued"
    assert [m.id for m in await q.subscribe("t", batch_size=10)] == [d, a, b, c]


async def test_delayed_message_joins_its_level_when_due(
    open_queue: OpenQueue, clock: ManualClock
) -> None:
    """Documented difference: a delayed message queues behind messages published meanwhile."""
    q = await open_queue(clock=clock)
    later = await q.publish("t", "later", delay=10)
    now = await q.publish("t", "now")
    clock.advance(11)
    assert [m.id for m in await q.subscribe("t", batch_size=5)] == [now, later]


async def test_blocking_subscribe_is_woken_by_another_process(open_queue: OpenQueue) -> None:
    """A subscriber waiting in one process wakes when another publishes (not by polling)."""
    waiting = await open_queue(poll_interval=30, socket_timeout=60)
    publisher = await open_queue()
    got: list[sr.Message] = []

    async def consume() -> None:
        got.extend(await waiting.subscribe("t", timeout=None))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.1)
            await publisher.publish("t", "hello")
    assert [m.payload for m in got] == ["hello"]


async def test_waiting_subscriber_learns_of_a_delayed_message(open_queue: OpenQueue) -> None:
    """A waiting subscriber wakes when a delayed message published elsewhere falls due."""
    waiting = await open_queue(poll_interval=30, socket_timeout=60)
    publisher = await open_queue()
    got: list[sr.Message] = []

    async def consume() -> None:
        got.extend(await waiting.subscribe("t", timeout=None))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.1)
            await publisher.publish("t", "soon", delay=0.2)
    assert [m.payload for m in got] == ["soon"]


async def test_interrupt_wakes_a_waiting_subscriber(open_queue: OpenQueue) -> None:
    """interrupt(topic) makes a waiting subscribe return an empty list at once."""
    q = await open_queue(poll_interval=30, socket_timeout=60)
    assert q.supports_interrupt
    results: list[list[sr.Message]] = []

    async def consume() -> None:
        results.append(await q.subscribe("t", timeout=None))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.1)
            q.interrupt("t")
    assert results == [[]]
    await q.publish("t", 1)
    assert len(await q.subscribe("t")) == 1


async def test_publishing_one_message_twice_from_two_queues_stores_it_once(
    open_queue: OpenQueue,
) -> None:
    """A message id is stored once, whichever process publishes it again."""
    q1, q2 = await open_queue(), await open_queue()
    message = sr.Message(topic="t", payload=1)
    assert await q1.publish_message(message) == message.id
    assert await q2.publish_message(message) == message.id
    assert await q1.depth("t") == 1


async def test_dedup_key_is_shared_between_queues(
    open_queue: OpenQueue, clock: ManualClock
) -> None:
    """A dedup key taken in one process deduplicates publishes in another."""
    q1 = await open_queue(clock=clock, dedup_window=60)
    q2 = await open_queue(clock=clock, dedup_window=60)
    first = await q1.publish("t", 1, dedup_key="order-7")
    assert await q2.publish("t", 2, dedup_key="order-7") == first
    clock.advance(61)
    assert await q2.publish("t", 3, dedup_key="order-7") != first


async def test_another_process_can_settle_and_extend(
    open_queue: OpenQueue, clock: ManualClock
) -> None:
    """Ack, extend and nack work by id from any process, not only the one holding the lease."""
    q1, q2 = await open_queue(clock=clock), await open_queue(clock=clock)
    a = await q1.publish("t", "a")
    b = await q1.publish("t", "b")
    await q1.subscribe("t", batch_size=2, lease=10)
    clock.advance(9)
    assert await q2.extend(a, 10) is True
    assert await q2.acknowledge(b) is True
    clock.advance(5)
    assert await q2.subscribe("t") == []
    assert await q2.nack(a) == "requeued"
    [again] = await q1.subscribe("t")
    assert (again.id, again.attempts) == (a, 2)


async def test_concurrent_acks_share_a_round_trip_and_all_settle(open_queue: OpenQueue) -> None:
    """Many concurrent acks (most of them answered early) settle every message."""
    q = await open_queue()
    for i in range(50):
        await q.publish("t", i)
    batch = await q.subscribe("t", batch_size=50)
    results: list[bool] = []

    async def ack(message_id: str) -> None:
        results.append(await q.acknowledge(message_id))

    async with anyio.create_task_group() as tg:
        for message in batch:
            tg.start_soon(ack, message.id)
    assert results == [True] * 50
    assert await q.depth("t") == 0
    assert await q.acknowledge(batch[0].id) is False


async def test_ack_of_a_message_never_delivered_keeps_counts_right(
    open_queue: OpenQueue,
) -> None:
    """Acking a ready message (by id) removes it; the other ready ones still count and come."""
    q = await open_queue()
    ids = [await q.publish("t", i) for i in range(3)]
    assert await q.acknowledge(ids[1]) is True
    assert (await q.stats("t")).ready == 2
    assert [m.id for m in await q.subscribe("t", batch_size=5)] == [ids[0], ids[2]]
    assert [m.payload for m in await q.peek("t")] == []


async def test_peek_shows_ready_messages_in_delivery_order(
    open_queue: OpenQueue,
) -> None:
    """peek lists requeued messages with their attempts, then new ones, by priority."""
    q = await open_queue()
    a = await q.publish("t", "a")
    b = await q.publish("t", "b", priority=1)
    [m] = await q.subscribe("t")
    assert m.id == b
    await q.nack(b, error="e")
    peeked = await q.peek("t")
    assert [(p.id, p.attempts, p.last_error) for p in peeked] == [(b, 1, "e"), (a, 0, None)]
    assert (await q.stats("t")).leased == 0


async def test_subscribe_leases_at_most_a_thousand_per_call(open_queue: OpenQueue) -> None:
    """One subscribe call leases at most 1,000 messages (the script's bound)."""
    q = await open_queue()
    for start in range(0, 1001, 100):
        async with anyio.create_task_group() as tg:
            for i in range(start, min(1001, start + 100)):
                tg.start_soon(q.publish, "t", i)
    assert len(await q.subscribe("t", batch_size=5000)) == 1000
    assert len(await q.subscribe("t", batch_size=5000)) == 1


async def test_close_removes_this_consumer_from_the_group(
    open_queue: OpenQueue, raw: aioredis.Redis, prefix: str
) -> None:
    """A closed queue with nothing pending leaves no consumer behind in the streams' groups."""
    q = await open_queue()
    for i in range(3):
        await q.publish("t", i)
    [m] = await q.subscribe("t")
    await q.acknowledge(m.id)
    stream = f"{prefix}:q:t:t:s:0"
    assert len(await raw.xinfo_consumers(stream, "swarm")) == 1
    await q.close()
    assert await raw.xinfo_consumers(stream, "swarm") == []


async def test_priority_beyond_exact_scores_is_refused(open_queue: OpenQueue) -> None:
    """Priorities must be exact as sorted-set scores; larger ones are refused clearly."""
    q = await open_queue()
    with pytest.raises(ValueError, match="priority"):
        await q.publish("t", 1, priority=2**60)


async def test_braced_prefix_for_redis_cluster_works(raw: aioredis.Redis) -> None:
    """A prefix in braces (one cluster slot for every key) is just another prefix."""
    prefix = "{" + new_prefix() + "}"
    q = await sr.MessageQueue.open(REDIS_URL, prefix=prefix)
    try:
        await q.publish("t", 1)
        [m] = await q.subscribe("t")
        assert await q.acknowledge(m.id)
        assert await keys(raw, prefix) == []
    finally:
        await q.close()
        await delete_keys(prefix)


async def test_acked_entries_behind_a_straggler_stay_bounded(
    open_queue: OpenQueue, raw: aioredis.Redis, prefix: str
) -> None:
    """A message held for long does not make the stream keep every entry acked after it:
    past 4,096 such entries they are deleted one by one."""
    q = await open_queue()
    for start in range(0, 8000, 500):
        async with anyio.create_task_group() as tg:
            for i in range(start, start + 500):
                tg.start_soon(q.publish, "t", i)
    [held] = await q.subscribe("t")
    while batch := await q.subscribe("t", batch_size=1000):
        async with anyio.create_task_group() as tg:
            for message in batch:
                tg.start_soon(q.acknowledge, message.id)
    assert await raw.xlen(f"{prefix}:q:t:t:s:0") <= 1 + 4096 + 1000  # not 8,000
    assert await q.acknowledge(held.id) is True
    assert await raw.exists(f"{prefix}:q:t:t:s:0") == 0


async def test_concurrent_small_subscribes_share_a_call_and_split_the_messages(
    open_queue: OpenQueue,
) -> None:
    """Concurrent subscribe(1) calls (one per handler slot) each get their own message,
    highest priority to the first caller."""
    q = await open_queue()
    ids = [await q.publish("t", i, priority=i) for i in range(20)]
    got: list[list[sr.Message]] = []

    async def take() -> None:
        got.append(await q.subscribe("t", batch_size=1))

    async with anyio.create_task_group() as tg:
        for _ in range(25):
            tg.start_soon(take)
    assert sorted(len(batch) for batch in got) == [0] * 5 + [1] * 20
    taken = [batch[0].id for batch in got if batch]
    assert sorted(taken) == sorted(ids)
    assert taken[0] == ids[-1]


async def test_messages_leased_for_a_cancelled_subscribe_are_handed_back(
    open_queue: OpenQueue,
) -> None:
    """Messages leased for a subscribe call that was cancelled meanwhile are ready again at
    once, their attempt not counted."""
    q = await open_queue()
    assert isinstance(q, RedisQueue)
    for i in range(3):
        await q.publish("t", i)
    leased = await q.subscribe("t", batch_size=2)
    await q._hand_back([2], [(leased, b"")], None)
    stats = await q.stats("t")
    assert (stats.leased, stats.ready) == (0, 3)
    again = await q.subscribe("t", batch_size=3)
    assert [(m.payload, m.attempts) for m in again] == [(0, 1), (1, 1), (2, 1)]


@pytest.mark.parametrize("seed", range(6))
async def test_random_operations_match_the_memory_reference(
    open_queue: OpenQueue, seed: int
) -> None:
    """Random publishes (with priorities and max_attempts), leases, acks (also of messages
    never delivered), nacks and nack_many batches (with and without delay, or to the DLQ
    at once), releases, extends, lease expiries and
    purges give the same answers as the memory backend, the reference."""
    rng = random.Random(seed)
    clock = ManualClock()
    ours = await open_queue(clock=clock, max_attempts=3)
    reference = await sr.MessageQueue.open("memory://", clock=clock, max_attempts=3)
    published: list[str] = []
    leased: list[str] = []

    async def both(method: str, *args: Any, **kwargs: Any) -> Any:
        expected = await getattr(reference, method)(*args, **kwargs)
        got = await getattr(ours, method)(*args, **kwargs)
        if method == "subscribe":
            expected = [(m.id, m.attempts, m.payload, m.last_error) for m in expected]
            got = [(m.id, m.attempts, m.payload, m.last_error) for m in got]
        elif method == "peek":
            expected = [(m.id, m.attempts, m.last_error) for m in expected]
            got = [(m.id, m.attempts, m.last_error) for m in got]
        elif method == "dead_letters":  # leases that expire together die in any order
            expected = sorted((m.id, m.attempts, m.last_error) for m in expected)
            got = sorted((m.id, m.attempts, m.last_error) for m in got)
        assert got == expected, (method, args, kwargs)
        return got

    # No replay, nor a publish of an id already settled: there the memory reference can
    # expire the new lease early (a stale lease from the id's previous life matches it).
    try:
        for step in range(250):
            roll = rng.random()
            if roll < 0.3:
                message_id = f"{seed}-{step}"
                priority = rng.choice([0, 0, 1, 5])
                max_attempts = rng.choice([None, None, 1, 2])
                for queue in (reference, ours):
                    message = build_message(
                        "t",
                        step,
                        priority=priority,
                        max_attempts=max_attempts,
                        message_id=message_id,
                    )
                    await queue.publish_message(message)
                published.append(message_id)
            elif roll < 0.5:
                got = await both("subscribe", "t", rng.randint(1, 3), lease=10)
                leased += [item[0] for item in got]
            elif roll < 0.62 and (leased or published):
                pool = leased if leased and rng.random() < 0.8 else published
                await both("acknowledge", rng.choice(pool))
            elif roll < 0.68 and leased:
                delay = rng.choice([None, 5])
                await both("nack", rng.choice(leased), delay=delay, error=f"e{step}")
            elif roll < 0.72 and leased:
                batch = rng.sample(leased, min(len(leased), rng.randint(1, 4)))
                await both(
                    "nack_many",
                    [*batch, rng.choice(batch)],
                    delay=rng.choice([None, 5]),
                    error=rng.choice([None, f"e{step}"]),
                    dead_letter=rng.random() < 0.2,
                )
            elif roll < 0.77 and leased:
                await both("release", rng.choice(leased))
            elif roll < 0.82 and leased:
                await both("extend", rng.choice(leased), 10)
            elif roll < 0.9:
                clock.advance(rng.choice([1, 4, 11]))
            elif roll < 0.92:
                await both("purge", "t")
            else:
                await both("stats", "t")
                await both("peek", "t", limit=5)
                await both("dead_letters", "t")
        await both("stats", "t")
    finally:
        await reference.close()


async def test_nack_many_is_one_round_trip(
    open_queue: OpenQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nack_many sends one script call (one MULTI/EXEC past 1,000 ids) whatever the batch's
    size, and ids acked here whose ack is still on its way cost none."""
    q = await open_queue()
    assert isinstance(q, RedisQueue)
    await q.publish_many("t", list(range(2500)))
    ids = [m.id for _ in range(3) for m in await q.subscribe("t", batch_size=1000)]
    assert len(ids) == 2500
    sends: list[bytes] = []
    original = Connection.send_packed_command

    async def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        data = command if isinstance(command, bytes) else b"".join(command)
        if b"EVAL" in data:
            sends.append(data)
        await original(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    assert await q.nack_many(ids[:10], error="x") == ["requeued"] * 10
    assert len(sends) == 1
    assert await q.nack_many(ids[10:], dead_letter=True) == ["dead_lettered"] * 2490
    assert len(sends) == 2
    assert sends[1].count(b"EVAL") == 3  # three chunks in one transaction
    assert not any(message_id in q._delivered for message_id in ids)
    [again] = await q.subscribe("t")
    q._settling.add(again.id)  # as if acked early, the ack batch still on its way
    assert await q.nack_many([again.id, again.id]) == ["unknown", "unknown"]
    assert len(sends) == 3  # the subscribe; the nack asked nothing
    q._settling.discard(again.id)
    assert (await q.stats("t")).leased == 1
