"""The queue conformance suite: every backend must pass every test here."""

from __future__ import annotations

import anyio
import pytest

import swarm_runtime as sr
from swarm_runtime.clock import ManualClock
from swarm_runtime.queue.base import MAX_MESSAGE_BYTES

from ..conftest import QueueFactory


async def test_publish_then_subscribe_returns_the_message(make_queue: QueueFactory) -> None:
    """A published message comes back with its envelope intact and attempts = 1."""
    q = await make_queue()
    mid = await q.publish(
        "jobs",
        {"n": 1, "tags": ["a", "b"]},
        headers={"h": "v"},
        sender="tester",
        correlation_id="c1",
        workflow_id="w1",
        reply_to="replies",
    )
    [msg] = await q.subscribe("jobs")
    assert msg.id == mid
    assert msg.topic == "jobs"
    assert msg.payload == {"n": 1, "tags": ["a", "b"]}
    assert msg.headers == {"h": "v"}
    assert (msg.sender, msg.correlation_id, msg.workflow_id, msg.reply_to) == (
        "tester",
        "c1",
        "w1",
        "replies",
    )
    assert msg.attempts == 1
    assert await q.subscribe("jobs") == []


async def test_fifo_within_priority_and_higher_priority_first(make_queue: QueueFactory) -> None:
    """Higher priority is delivered first; equal priorities keep publish order."""
    q = await make_queue()
    ids = [await q.publish("t", i, priority=p) for i, p in enumerate([0, 5, 0, 5, 1])]
    got = await q.subscribe("t", batch_size=10)
    assert [m.id for m in got] == [ids[1], ids[3], ids[4], ids[0], ids[2]]


async def test_ack_settles_and_double_ack_is_harmless(make_queue: QueueFactory) -> None:
    """An acked message is gone; acking again, or an unknown id, returns False."""
    q = await make_queue()
    await q.publish("t", "x")
    [msg] = await q.subscribe("t")
    assert await q.depth("t") == 1
    assert await q.acknowledge(msg.id) is True
    assert await q.depth("t") == 0
    assert await q.acknowledge(msg.id) is False
    assert await q.acknowledge("no-such-id") is False


async def test_expired_lease_is_redelivered_with_attempts_plus_one(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """Unacked past its lease, a message is delivered again with attempts + 1."""
    q = await make_queue(clock=clock)
    await q.publish("t", "x")
    [first] = await q.subscribe("t", lease=10)
    clock.advance(5)
    assert await q.subscribe("t") == []
    clock.advance(6)
    [again] = await q.subscribe("t", lease=10)
    assert again.id == first.id
    assert again.attempts == 2


async def test_extend_keeps_the_lease(make_queue: QueueFactory, clock: ManualClock) -> None:
    """A heartbeat (extend) pushes the lease deadline out."""
    q = await make_queue(clock=clock)
    await q.publish("t", "x")
    [msg] = await q.subscribe("t", lease=10)
    clock.advance(8)
    assert await q.extend(msg.id, 10) is True
    clock.advance(8)
    assert await q.subscribe("t") == []
    clock.advance(3)
    assert [m.id for m in await q.subscribe("t")] == [msg.id]
    assert await q.extend("unknown", 5) is False


async def test_nack_requeues_and_nack_with_delay_waits(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """nack makes the message ready again; with a delay only once the delay has passed."""
    q = await make_queue(clock=clock)
    await q.publish("t", "x")
    [msg] = await q.subscribe("t")
    assert await q.nack(msg.id, error="boom") == "requeued"
    [msg] = await q.subscribe("t")
    assert msg.attempts == 2
    assert msg.last_error == "boom"
    assert await q.nack(msg.id, delay=30) == "requeued"
    assert await q.subscribe("t") == []
    assert (await q.stats("t")).delayed == 1
    clock.advance(31)
    [msg] = await q.subscribe("t")
    assert msg.attempts == 3
    assert await q.nack("unknown") == "unknown"


async def test_dead_letter_after_max_attempts_then_replay_and_purge(
    make_queue: QueueFactory,
) -> None:
    """After max_attempts nacks a message is dead-lettered with its error; it can be replayed."""
    q = await make_queue(max_attempts=3)
    mid = await q.publish("t", {"k": 1})
    outcomes = []
    for i in range(3):
        [msg] = await q.subscribe("t")
        outcomes.append(await q.nack(msg.id, error=f"fail {i}"))
    assert outcomes == ["requeued", "requeued", "dead_lettered"]
    assert await q.subscribe("t") == []
    [dead] = await q.dead_letters("t")
    assert dead.id == mid
    assert dead.last_error == "fail 2"
    assert dead.attempts == 3
    stats = await q.stats("t")
    assert (stats.depth, stats.dead) == (0, 1)
    assert await q.replay("t") == 1
    assert await q.dead_letters("t") == []
    [msg] = await q.subscribe("t")
    assert msg.id == mid
    assert msg.attempts == 1
    assert await q.nack(msg.id, error="x") == "requeued"
    [msg] = await q.subscribe("t")
    await q.nack(msg.id)
    [msg] = await q.subscribe("t")
    assert await q.nack(msg.id) == "dead_lettered"
    assert await q.purge_dead_letters("t") == 1
    assert await q.dead_letters("t") == []


async def test_message_max_attempts_overrides_queue_default(make_queue: QueueFactory) -> None:
    """A message's own max_attempts wins over the queue's."""
    q = await make_queue(max_attempts=10)
    await q.publish("t", 1, max_attempts=1)
    [msg] = await q.subscribe("t")
    assert await q.nack(msg.id, error="once") == "dead_lettered"


async def test_replay_selected_ids_only(make_queue: QueueFactory) -> None:
    """replay(ids=...) moves only the named dead letters back."""
    q = await make_queue(max_attempts=1)
    a = await q.publish("t", "a")
    b = await q.publish("t", "b")
    for msg in await q.subscribe("t", batch_size=2):
        await q.nack(msg.id, error="e")
    assert await q.replay("t", ids=[b, "nope"]) == 1
    assert [m.id for m in await q.dead_letters("t")] == [a]
    assert [m.id for m in await q.subscribe("t")] == [b]


async def test_lease_expiry_past_max_attempts_dead_letters(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """A message whose consumer keeps dying ends in the DLQ, not in an endless loop."""
    q = await make_queue(clock=clock, max_attempts=2)
    await q.publish("t", "x")
    for _ in range(2):
        assert len(await q.subscribe("t", lease=1)) == 1
        clock.advance(2)
    assert await q.subscribe("t") == []
    [dead] = await q.dead_letters("t")
    assert "lease expired" in (dead.last_error or "")


async def test_delayed_publish(make_queue: QueueFactory, clock: ManualClock) -> None:
    """A delayed message is invisible until its delay has passed."""
    q = await make_queue(clock=clock)
    await q.publish("t", "later", delay=60)
    now_id = await q.publish("t", "now")
    assert [m.id for m in await q.subscribe("t", batch_size=5, lease=1000)] == [now_id]
    clock.advance(59)
    assert await q.subscribe("t") == []
    clock.advance(2)
    [msg] = await q.subscribe("t")
    assert msg.payload == "later"


async def test_dedup_key_within_window(make_queue: QueueFactory, clock: ManualClock) -> None:
    """A dedup key seen within the window returns the first id and stores nothing."""
    q = await make_queue(clock=clock, dedup_window=100)
    first = await q.publish("t", 1, dedup_key="k")
    second = await q.publish("t", 2, dedup_key="k")
    assert first == second
    assert await q.depth("t") == 1
    clock.advance(101)
    third = await q.publish("t", 3, dedup_key="k")
    assert third != first
    assert await q.depth("t") == 2


async def test_batch_subscribe_leases_up_to_batch_size(make_queue: QueueFactory) -> None:
    """subscribe(batch_size=n) leases at most n messages."""
    q = await make_queue()
    for i in range(7):
        await q.publish("t", i)
    first = await q.subscribe("t", batch_size=5)
    second = await q.subscribe("t", batch_size=5)
    assert [m.payload for m in first + second] == list(range(7))
    assert (await q.stats("t")).leased == 7


async def test_blocking_subscribe_wakes_on_publish(make_queue: QueueFactory) -> None:
    """A subscriber waiting with timeout=None gets a message published later."""
    q = await make_queue()
    got: list[sr.Message] = []

    async def consumer() -> None:
        got.extend(await q.subscribe("t", timeout=None))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consumer)
        await anyio.sleep(0.05)
        await q.publish("t", "hello")
    assert [m.payload for m in got] == ["hello"]


async def test_subscribe_timeout_returns_empty(make_queue: QueueFactory) -> None:
    """A subscriber with a timeout gives up with an empty list."""
    q = await make_queue()
    with anyio.fail_after(5):
        assert await q.subscribe("t", timeout=0.05) == []


async def test_blocking_subscribe_sees_delayed_message_become_due(make_queue: QueueFactory) -> None:
    """A waiting subscriber wakes when a delayed message becomes due (real clock)."""
    q = await make_queue()
    await q.publish("t", "soon", delay=0.1)
    with anyio.fail_after(5):
        [msg] = await q.subscribe("t", timeout=None)
    assert msg.payload == "soon"


async def test_waiting_subscriber_gets_a_message_nacked_with_delay(
    make_queue: QueueFactory,
) -> None:
    """A subscriber already waiting wakes when a message nacked with a delay falls due."""
    q = await make_queue()
    await q.publish("t", "x")
    [msg] = await q.subscribe("t")
    got: list[sr.Message] = []

    async def waiter() -> None:
        got.extend(await q.subscribe("t", timeout=None))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.05)
            await q.nack(msg.id, delay=0.1)
    assert [m.attempts for m in got] == [2]


async def test_closed_queue_refuses_use_and_wakes_waiters(make_queue: QueueFactory) -> None:
    """After close every call raises QueueClosedError, including a blocked subscribe."""
    q = await make_queue()
    errors: list[BaseException] = []

    async def blocked() -> None:
        try:
            await q.subscribe("t", timeout=None)
        except sr.QueueClosedError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(blocked)
        await anyio.sleep(0.05)
        await q.close()
    assert len(errors) == 1
    with pytest.raises(sr.QueueClosedError, match="closed"):
        await q.publish("t", 1)
    with pytest.raises(sr.QueueClosedError):
        await q.subscribe("t")
    with pytest.raises(sr.QueueClosedError):
        await q.start()
    await q.close()  # idempotent


@pytest.mark.parametrize("topic", ["", "a/b", "../etc", "a..b", ".hidden", "x" * 201, "sp ace"])
async def test_invalid_topics_are_refused(make_queue: QueueFactory, topic: str) -> None:
    """Topic names that could escape a directory or break keys are refused clearly."""
    q = await make_queue()
    with pytest.raises(sr.InvalidTopicError):
        await q.publish(topic, 1)
    with pytest.raises(sr.InvalidTopicError):
        await q.subscribe(topic)


async def test_non_json_payload_is_refused_and_nothing_stored(make_queue: QueueFactory) -> None:
    """A payload that is not JSON is refused at publish, naming the path and the type."""
    q = await make_queue()
    with pytest.raises(sr.PayloadError, match=r"payload\.items\[1\].*set") as info:
        await q.publish("t", {"items": [1, {1, 2}]})
    assert info.value.path == "payload.items[1]"
    with pytest.raises(sr.PayloadError, match="non-finite"):
        await q.publish("t", {"x": float("nan")})
    with pytest.raises(sr.PayloadError, match="keys must be str"):
        await q.publish("t", {1: "a"})
    assert await q.depth("t") == 0


async def test_one_message_size_limit_on_every_backend(make_queue: QueueFactory) -> None:
    """A payload over MAX_MESSAGE_BYTES (64 MiB as JSON) is refused alike everywhere,
    before anything is stored; one just under it is accepted."""
    q = await make_queue()
    limit = MAX_MESSAGE_BYTES
    with pytest.raises(sr.PayloadError, match=r"larger than the queue's limit of 67108864") as info:
        await q.publish("t", "x" * (limit - 1))  # the quotes make it limit + 1 bytes
    assert info.value.path == "payload"
    with pytest.raises(sr.PayloadError, match="larger than") as info:
        await q.publish_many("t", ["small", "x" * (limit - 1), "small"])
    assert info.value.path == "payloads[1]"
    assert await q.depth("t") == 0
    if q.scheme == "memory":  # the boundary itself (cheap only in memory)
        await q.publish("t", "x" * (limit - 2))
        assert await q.depth("t") == 1


async def test_bad_arguments_are_refused(make_queue: QueueFactory) -> None:
    """Negative delays, zero batch sizes and non-positive leases raise ValueError."""
    q = await make_queue()
    with pytest.raises(ValueError, match="delay"):
        await q.publish("t", 1, delay=-1)
    with pytest.raises(ValueError, match="batch_size"):
        await q.subscribe("t", batch_size=0)
    with pytest.raises(ValueError, match="lease"):
        await q.subscribe("t", lease=0)
    with pytest.raises(ValueError, match="max_attempts"):
        await q.publish("t", 1, max_attempts=0)


async def test_release_does_not_count_the_attempt(make_queue: QueueFactory) -> None:
    """A message handed back at shutdown keeps its attempt count."""
    q = await make_queue()
    await q.publish("t", "x")
    [msg] = await q.subscribe("t")
    assert await q.release(msg.id) is True
    [msg] = await q.subscribe("t")
    assert msg.attempts == 1
    assert await q.release("unknown") is False


async def test_consume_iterates_messages(make_queue: QueueFactory) -> None:
    """consume() yields messages as they arrive."""
    q = await make_queue()
    for i in range(3):
        await q.publish("t", i)
    seen = []
    with anyio.fail_after(5):
        async for msg in q.consume("t"):
            seen.append(msg.payload)
            await q.acknowledge(msg.id)
            if len(seen) == 3:
                break
    assert seen == [0, 1, 2]


async def test_competing_consumers_each_message_once(make_queue: QueueFactory) -> None:
    """Several consumers on one topic share the messages: each is delivered exactly once."""
    q = await make_queue()
    n = 200
    seen: list[int] = []

    async def consumer() -> None:
        while True:
            batch = await q.subscribe("t", batch_size=3, timeout=0.2)
            if not batch:
                return
            for msg in batch:
                seen.append(msg.payload)
                await q.acknowledge(msg.id)

    async def producer(start: int) -> None:
        for i in range(start, n, 4):
            await q.publish("t", i)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for p in range(4):
                tg.start_soon(producer, p)
            for _ in range(3):
                tg.start_soon(consumer)
    assert sorted(seen) == list(range(n))


async def test_stats_peek_topics_and_purge(make_queue: QueueFactory) -> None:
    """Inspection does not lease; purge drops ready messages but not leased ones."""
    q = await make_queue()
    for i in range(4):
        await q.publish("a", i)
    await q.publish("b", "x", delay=100)
    assert [m.payload for m in await q.peek("a", limit=2)] == [0, 1]
    [leased] = await q.subscribe("a")
    stats = await q.stats("a")
    assert (stats.ready, stats.leased, stats.delayed, stats.dead) == (3, 1, 0, 0)
    assert (await q.stats("b")).delayed == 1
    assert await q.topics() == ["a", "b"]
    assert await q.purge("a") == 3
    assert await q.depth("a") == 1
    assert await q.acknowledge(leased.id) is True
    assert await q.purge("b") == 1
    assert await q.topics() == []


async def test_publish_message_with_same_id_is_idempotent(make_queue: QueueFactory) -> None:
    """Publishing a prepared message twice stores it once."""
    q = await make_queue()
    msg = sr.Message(topic="t", payload=1)
    assert await q.publish_message(msg) == msg.id
    assert await q.publish_message(msg) == msg.id
    assert await q.depth("t") == 1


async def test_async_with_open_closes(make_queue: QueueFactory) -> None:
    """The opener works as an async context manager and closes the queue on exit."""
    if make_queue.backend != "memory":  # type: ignore[attr-defined]
        pytest.skip("URL-specific; memory is enough to check the opener")
    async with sr.MessageQueue.open("memory://") as q:
        assert q.is_open
    assert q.is_closed


async def test_old_lease_of_a_republished_id_does_not_expire_the_new_one(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """A message id published again after it was settled gets a fresh lease: the old
    lease's deadline does not cut the new one short."""
    q = await make_queue(clock=clock)
    msg = sr.Message(topic="t", payload=1)
    await q.publish_message(msg)
    [first] = await q.subscribe("t", lease=10)
    await q.nack(first.id)
    [again] = await q.subscribe("t", lease=10)
    await q.acknowledge(again.id)
    await q.publish_message(msg)
    [fresh] = await q.subscribe("t", lease=100)
    clock.advance(11)
    assert (await q.stats("t")).leased == 1
    assert await q.subscribe("t") == []
    assert fresh.id == msg.id


# ---------------------------------------------------------------------------- batches


async def test_publish_many_stores_the_batch_in_order(make_queue: QueueFactory) -> None:
    """publish_many returns one id per payload, in order; they are delivered in that order."""
    q = await make_queue()
    ids = await q.publish_many("t", [{"n": i} for i in range(250)], priority=2)
    assert len(ids) == len(set(ids)) == 250
    got = await q.subscribe("t", batch_size=500)
    assert [m.id for m in got] == ids
    assert [m.payload for m in got] == [{"n": i} for i in range(250)]
    assert {(m.priority, m.attempts) for m in got} == {(2, 1)}
    assert await q.publish_many("t", []) == []


async def test_publish_many_beyond_one_script_call(make_queue: QueueFactory) -> None:
    """A batch larger than one backend call (Redis: 1,000) is stored whole, in order."""
    q = await make_queue()
    ids = await q.publish_many("big", list(range(2500)))
    assert await q.depth("big") == 2500
    got = await q.subscribe("big", batch_size=1000)
    assert [m.payload for m in got] == list(range(1000))
    assert [m.id for m in got] == ids[:1000]


async def test_publish_many_bad_payload_stores_nothing(make_queue: QueueFactory) -> None:
    """One payload that is not JSON, in the middle, refuses the whole batch and names it."""
    q = await make_queue()
    payloads: list[object] = [1, 2, {"ok": [1]}, {"bad": {1, 2}}, 5]
    with pytest.raises(sr.PayloadError, match=r"payloads\[3\]\.bad") as info:
        await q.publish_many("t", payloads)
    assert info.value.path == "payloads[3].bad"
    with pytest.raises(sr.PayloadError, match=r"payloads\[1\]\.x .*non-finite"):
        await q.publish_many("t", [None, {"x": float("nan")}, 3])
    assert await q.depth("t") == 0
    assert await q.subscribe("t", batch_size=10) == []


async def test_publish_many_refuses_bad_arguments(make_queue: QueueFactory) -> None:
    """Bad topic, delay, priority or dedup keys: nothing stored, a clear error."""
    q = await make_queue()
    with pytest.raises(sr.InvalidTopicError):
        await q.publish_many("bad topic", [1])
    with pytest.raises(ValueError, match="delay"):
        await q.publish_many("t", [1], delay=-1)
    with pytest.raises(ValueError, match="priority"):
        await q.publish_many("t", [1], priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one entry per payload"):
        await q.publish_many("t", [1, 2], dedup_keys=["a"])
    with pytest.raises(ValueError, match=r"dedup_keys\[1\]"):
        await q.publish_many("t", [1, 2], dedup_keys=["a", ""])
    with pytest.raises(TypeError, match="list of payloads"):
        await q.publish_many("t", "abc")
    with pytest.raises(TypeError, match="list of message ids"):
        await q.acknowledge_many("abc")
    assert await q.depth("t") == 0


async def test_publish_many_dedup_within_and_across_batches(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """A dedup key repeated in a batch, or seen in an earlier one, returns the first id."""
    q = await make_queue(clock=clock, dedup_window=100)
    first = await q.publish("t", "single", dedup_key="a")
    ids = await q.publish_many(
        "t", ["x", "y", "z", "w", "v"], dedup_keys=["a", "b", None, "b", "c"]
    )
    assert ids[0] == first
    assert ids[3] == ids[1]
    assert len({first, ids[1], ids[2], ids[4]}) == 4
    again = await q.publish_many("t", ["p", "q"], dedup_keys=["c", "d"])
    assert again[0] == ids[4]
    got = await q.subscribe("t", batch_size=10)
    assert [m.payload for m in got] == ["single", "y", "z", "v", "q"]
    clock.advance(101)
    later = await q.publish_many("t", ["late"], dedup_keys=["a"])
    assert later[0] != first


async def test_publish_many_with_delay(make_queue: QueueFactory, clock: ManualClock) -> None:
    """A delayed batch becomes ready together when the delay passes."""
    q = await make_queue(clock=clock)
    await q.publish_many("t", [1, 2, 3], delay=30)
    assert await q.subscribe("t", batch_size=5) == []
    assert (await q.stats("t")).delayed == 3
    clock.advance(31)
    assert [m.payload for m in await q.subscribe("t", batch_size=5)] == [1, 2, 3]


async def test_acknowledge_many_settles_a_leased_batch(make_queue: QueueFactory) -> None:
    """acknowledge_many settles every leased id it is given and counts only those."""
    q = await make_queue()
    await q.publish_many("t", list(range(300)))
    got = await q.subscribe("t", batch_size=256)
    ids = [m.id for m in got]
    assert await q.acknowledge_many(ids[:200]) == 200
    assert await q.depth("t") == 100
    # already settled, unknown and repeated ids are skipped
    assert await q.acknowledge_many([ids[0], "no-such-id", ids[200], ids[200]]) == 1
    assert await q.acknowledge_many([]) == 0
    stats = await q.stats("t")
    assert (stats.leased, stats.ready) == (55, 44)
    rest = await q.subscribe("t", batch_size=100)
    assert await q.acknowledge_many([m.id for m in rest] + ids[201:]) == 99
    assert await q.depth("t") == 0


async def test_nack_many_requeues_and_dead_letters(make_queue: QueueFactory) -> None:
    """nack_many gives a batch back (or to the DLQ), one outcome per id."""
    q = await make_queue(max_attempts=2)
    await q.publish_many("t", [1, 2, 3])
    got = await q.subscribe("t", batch_size=3)
    outcomes = await q.nack_many([m.id for m in got] + ["nope"], error="boom")
    assert outcomes == ["requeued", "requeued", "requeued", "unknown"]
    again = await q.subscribe("t", batch_size=3)
    assert [m.attempts for m in again] == [2, 2, 2]
    assert await q.nack_many([again[0].id], dead_letter=True, error="bad") == ["dead_lettered"]
    assert await q.nack_many([m.id for m in again[1:]]) == ["dead_lettered"] * 2
    assert len(await q.dead_letters("t")) == 3


async def test_nack_many_outcomes_in_order(make_queue: QueueFactory) -> None:
    """nack_many answers leased, unknown, already settled and repeated ids in their order,
    and touches only the leased ones."""
    q = await make_queue()
    await q.publish_many("t", [0, 1, 2, 3])
    got = await q.subscribe("t", batch_size=4)
    ids = [m.id for m in got]
    assert await q.acknowledge(ids[1])
    outcomes = await q.nack_many([ids[2], "no-such-id", ids[1], ids[0], ids[2], ids[3]])
    assert outcomes == ["requeued", "unknown", "unknown", "requeued", "unknown", "requeued"]
    stats = await q.stats("t")
    assert (stats.ready, stats.leased) == (3, 0)
    again = await q.subscribe("t", batch_size=4)
    assert sorted(m.payload for m in again) == [0, 2, 3]
    assert [m.attempts for m in again] == [2, 2, 2]
    assert await q.nack_many([m.id for m in again] + [ids[0]]) == ["requeued"] * 3 + ["unknown"]


async def test_nack_many_honours_delay(make_queue: QueueFactory, clock: ManualClock) -> None:
    """A batch nacked with a delay comes back once the delay has passed, not before."""
    q = await make_queue(clock=clock)
    await q.publish_many("t", [1, 2, 3])
    got = await q.subscribe("t", batch_size=3)
    assert await q.nack_many([m.id for m in got], delay=30) == ["requeued"] * 3
    assert await q.subscribe("t", batch_size=3) == []
    assert (await q.stats("t")).delayed == 3
    clock.advance(29)
    assert await q.subscribe("t", batch_size=3) == []
    clock.advance(2)
    again = await q.subscribe("t", batch_size=3)
    assert sorted(m.payload for m in again) == [1, 2, 3]
    assert {m.attempts for m in again} == {2}


async def test_nack_many_records_the_error(make_queue: QueueFactory) -> None:
    """The error given to nack_many is each redelivered message's last_error."""
    q = await make_queue()
    await q.publish_many("t", [1, 2])
    got = await q.subscribe("t", batch_size=2)
    await q.nack_many([m.id for m in got], error="disk on fire")
    again = await q.subscribe("t", batch_size=2)
    assert [m.last_error for m in again] == ["disk on fire"] * 2


async def test_nack_many_dead_letters_exhausted_messages(make_queue: QueueFactory) -> None:
    """In one batch, a message on its last attempt goes to the DLQ with the error while
    the others are requeued; a message's own max_attempts counts."""
    q = await make_queue(max_attempts=2)
    first = await q.publish("t", "old")
    [leased] = await q.subscribe("t")
    assert await q.nack(leased.id) == "requeued"
    once = await q.publish("t", "once", max_attempts=1)
    fresh = await q.publish("t", "fresh")
    got = {m.id: m for m in await q.subscribe("t", batch_size=3)}
    assert (got[first].attempts, got[once].attempts, got[fresh].attempts) == (2, 1, 1)
    outcomes = await q.nack_many([fresh, first, once], error="bad")
    assert outcomes == ["requeued", "dead_lettered", "dead_lettered"]
    dead = {m.id: m for m in await q.dead_letters("t")}
    assert set(dead) == {first, once}
    assert {m.last_error for m in dead.values()} == {"bad"}
    stats = await q.stats("t")
    assert (stats.ready, stats.leased, stats.dead) == (1, 0, 2)


async def test_nack_many_dead_letter_true(make_queue: QueueFactory) -> None:
    """dead_letter=True sends every leased message of the batch to the DLQ on its first
    attempt, with the error, or the one recorded before, or a default that says so."""
    q = await make_queue(max_attempts=5)
    await q.publish_many("t", [1, 2, 3])
    got = await q.subscribe("t", batch_size=3)
    assert await q.nack(got[2].id, error="first failure") == "requeued"
    outcomes = await q.nack_many([got[0].id, "no-such-id", got[1].id], dead_letter=True)
    assert outcomes == ["dead_lettered", "unknown", "dead_lettered"]
    [again] = await q.subscribe("t")
    assert await q.nack_many([again.id], dead_letter=True) == ["dead_lettered"]
    dead = {m.payload: m.last_error for m in await q.dead_letters("t")}
    assert dead == {1: "dead-lettered", 2: "dead-lettered", 3: "first failure"}
    assert await q.depth("t") == 0
    await q.publish("t", 4)
    [four] = await q.subscribe("t")
    assert await q.nack_many([four.id], dead_letter=True, error="no") == ["dead_lettered"]
    assert (await q.dead_letters("t"))[-1].last_error == "no"


async def test_nack_dead_letter_true_dead_letters_at_once(make_queue: QueueFactory) -> None:
    """nack(dead_letter=True) dead-letters a message on its first attempt, on every backend."""
    q = await make_queue(max_attempts=5)
    await q.publish("t", 1)
    [msg] = await q.subscribe("t")
    assert await q.nack(msg.id, dead_letter=True, error="not worth retrying") == "dead_lettered"
    assert await q.nack(msg.id, dead_letter=True) == "unknown"
    [dead] = await q.dead_letters("t")
    assert (dead.id, dead.attempts, dead.last_error) == (msg.id, 1, "not worth retrying")


async def test_nack_many_larger_than_one_script_chunk(make_queue: QueueFactory) -> None:
    """A batch of 1,500 (more than one Redis script call takes) is nacked whole, in order,
    a repeated id answering unknown wherever it falls."""
    q = await make_queue()
    await q.publish_many("t", list(range(1500)))
    ids = [m.id for m in await q.subscribe("t", batch_size=1000)]
    ids += [m.id for m in await q.subscribe("t", batch_size=1000)]
    assert len(ids) == 1500
    outcomes = await q.nack_many([*ids[:1100], ids[5], *ids[1100:]])
    assert outcomes == ["requeued"] * 1100 + ["unknown"] + ["requeued"] * 400
    stats = await q.stats("t")
    assert (stats.ready, stats.leased) == (1500, 0)


async def test_nack_many_empty_and_bad_batches_change_nothing(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty batch returns [] without reaching the backend, and a batch with a bad id
    is refused before any of it is nacked."""
    q = await make_queue()
    await q.publish("t", 1)
    [msg] = await q.subscribe("t")

    async def no_call(*args: object) -> list[str]:
        raise AssertionError("the backend hook was called for an empty batch")

    with monkeypatch.context() as patch:
        patch.setattr(q, "_nack_many", no_call)
        assert await q.nack_many([]) == []
        assert await q.nack_many(()) == []
    with pytest.raises(TypeError, match=r"message_ids\[1\]"):
        await q.nack_many([msg.id, 7])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="delay"):
        await q.nack_many([msg.id], delay=-1)
    assert (await q.stats("t")).leased == 1
    assert await q.nack_many([msg.id]) == ["requeued"]


# ---------------------------------------------------------------------------- publish_all


async def test_publish_all_stores_each_message_with_its_own_options(
    make_queue: QueueFactory,
) -> None:
    """publish_all returns one id per message, in order, and each message keeps its own
    topic, envelope, priority and max_attempts."""
    q = await make_queue()
    messages = [
        sr.Outgoing(
            f"t{i % 3}",
            {"n": i},
            priority=i % 4,
            headers={"h": str(i)} if i % 2 else None,
            sender=f"s{i}",
            correlation_id=f"c{i}",
            workflow_id=f"w{i}",
            reply_to=f"r{i}",
            max_attempts=i + 1,
        )
        for i in range(30)
    ]
    ids = await q.publish_all(messages)
    assert len(ids) == len(set(ids)) == 30
    by_id = {}
    for topic in ("t0", "t1", "t2"):
        got = await q.subscribe(topic, batch_size=50)
        assert len(got) == 10
        assert [m.priority for m in got] == sorted((m.priority for m in got), reverse=True)
        by_id.update({m.id: m for m in got})
    for i, message_id in enumerate(ids):
        m = by_id[message_id]
        assert (m.topic, m.payload, m.priority, m.max_attempts) == (
            f"t{i % 3}",
            {"n": i},
            i % 4,
            i + 1,
        )
        assert m.headers == ({"h": str(i)} if i % 2 else {})
        assert (m.sender, m.correlation_id, m.workflow_id, m.reply_to) == (
            f"s{i}",
            f"c{i}",
            f"w{i}",
            f"r{i}",
        )
    assert await q.publish_all([]) == []


async def test_publish_all_keeps_order_within_a_topic(make_queue: QueueFactory) -> None:
    """Messages of one topic and priority in a publish_all are delivered in list order,
    after those published before, and more than one script call's worth is stored whole."""
    q = await make_queue()
    first = await q.publish("t", "before")
    ids = await q.publish_all([sr.Outgoing("t", i) for i in range(2500)])
    assert await q.depth("t") == 2501
    got = await q.subscribe("t", batch_size=1000)
    assert [m.id for m in got] == [first, *ids[:999]]


async def test_publish_all_honours_delay_and_max_attempts(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """A message's own delay holds it back alone; its own max_attempts sends it to the
    dead-letter queue after that many deliveries."""
    q = await make_queue(clock=clock, max_attempts=5)
    ids = await q.publish_all(
        [sr.Outgoing("t", "later", delay=30), sr.Outgoing("t", "once", max_attempts=1)]
    )
    [msg] = await q.subscribe("t", batch_size=5)
    assert (msg.id, msg.payload) == (ids[1], "once")
    assert await q.nack(msg.id, error="boom") == "dead_lettered"
    assert (await q.stats("t")).delayed == 1
    clock.advance(31)
    [late] = await q.subscribe("t", batch_size=5)
    assert (late.id, late.payload) == (ids[0], "later")


async def test_publish_all_bad_message_stores_nothing(make_queue: QueueFactory) -> None:
    """A bad message at any position refuses the whole batch, naming messages[k]."""
    q = await make_queue()
    good = [sr.Outgoing("a", 1), sr.Outgoing("b", 2, priority=3)]
    with pytest.raises(sr.PayloadError, match=r"messages\[2\]\.payload\.bad") as info:
        await q.publish_all([*good, sr.Outgoing("c", {"bad": {1}})])
    assert info.value.path == "messages[2].payload.bad"
    with pytest.raises(TypeError, match=r"messages\[3\]\.priority"):
        await q.publish_all([*good, sr.Outgoing("c"), sr.Outgoing("c", priority=1.5)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"messages\[2\]\.delay"):
        await q.publish_all([*good, sr.Outgoing("c", delay=-1)])
    with pytest.raises(ValueError, match=r"messages\[2\]\.max_attempts"):
        await q.publish_all([*good, sr.Outgoing("c", max_attempts=0)])
    with pytest.raises(ValueError, match=r"messages\[2\]\.dedup_key"):
        await q.publish_all([*good, sr.Outgoing("c", dedup_key="")])
    with pytest.raises(TypeError, match=r"messages\[2\]\.headers"):
        await q.publish_all([*good, sr.Outgoing("c", headers=["h"])])  # type: ignore[arg-type]
    with pytest.raises(sr.PayloadError, match=r"messages\[2\]\.headers\.h"):
        await q.publish_all([*good, sr.Outgoing("c", headers={"h": {1}})])
    with pytest.raises(sr.InvalidTopicError, match=r"messages\[2\]\.to: invalid topic"):
        await q.publish_all([*good, sr.Outgoing("c/d")])
    with pytest.raises(TypeError, match=r"messages\[1\] must be an Outgoing"):
        await q.publish_all([good[0], ("b", 2)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="list of Outgoing"):
        await q.publish_all(good[0])  # type: ignore[arg-type]
    assert await q.topics() == []


async def test_publish_all_refused_by_the_backend_stores_nothing(make_queue: QueueFactory) -> None:
    """A message that only the backend refuses (a priority beyond what it stores), after
    good ones to other topics, stores none of them."""
    q = await make_queue()
    messages = [sr.Outgoing("a", 1), sr.Outgoing("b", 2), sr.Outgoing("c", 3, priority=2**64)]
    if q.scheme == "memory":  # any int is a priority in memory
        assert len(await q.publish_all(messages)) == 3
        return
    with pytest.raises(ValueError, match=r"messages\[2\]\.priority"):
        await q.publish_all(messages)
    assert await q.topics() == []
    assert await q.publish_all(messages[:2])  # the queue is still usable
    assert await q.topics() == ["a", "b"]


async def test_publish_all_dedup_within_and_across_batches(
    make_queue: QueueFactory, clock: ManualClock
) -> None:
    """A dedup key repeated within a publish_all (on any topic), or seen before, returns
    the first message's id and stores nothing."""
    q = await make_queue(clock=clock, dedup_window=100)
    first = await q.publish("t", "single", dedup_key="a")
    ids = await q.publish_all(
        [
            sr.Outgoing("t", "x", dedup_key="a"),
            sr.Outgoing("t", "y", dedup_key="b"),
            sr.Outgoing("u", "z"),
            sr.Outgoing("u", "w", dedup_key="b"),
            sr.Outgoing("t", "v", dedup_key="c"),
        ]
    )
    assert ids[0] == first
    assert ids[3] == ids[1]
    assert len({first, ids[1], ids[2], ids[4]}) == 4
    again = await q.publish_all([sr.Outgoing("t", "p", dedup_key="c")])
    assert again == [ids[4]]
    assert [m.payload for m in await q.subscribe("t", batch_size=10)] == ["single", "y", "v"]
    assert [m.payload for m in await q.subscribe("u", batch_size=10)] == ["z"]


async def test_publish_all_with_routes(make_queue: QueueFactory) -> None:
    """With routes, each message goes to its route's topic, and takes the route's
    max_attempts only if it has none of its own; a routes list of the wrong length is
    refused before anything is stored."""
    q = await make_queue()
    messages = [sr.Outgoing("alice", 1), sr.Outgoing("bob", 2, max_attempts=9)]
    with pytest.raises(ValueError, match="one entry per message"):
        await q.publish_all(messages, routes=[("inbox.a", 3)])
    assert await q.topics() == []
    ids = await q.publish_all(messages, routes=[("inbox.a", 3), ("inbox.b", 4)])
    [a] = await q.subscribe("inbox.a")
    [b] = await q.subscribe("inbox.b")
    assert (a.id, a.payload, a.max_attempts) == (ids[0], 1, 3)
    assert (b.id, b.payload, b.max_attempts) == (ids[1], 2, 9)
    assert await q.topics() == ["inbox.a", "inbox.b"]
