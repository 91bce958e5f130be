"""Replicas lease batches: sized by free slots and handler speed, settled with
acknowledge_many, handed back unstarted at shutdown and on Defer, never left to expire."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import swarm_runtime as sr
from swarm_runtime.runtime import _replica
from swarm_runtime.runtime._replica import MAX_BATCH

from ..conftest import REDIS_URL, QueueFactory, delete_redis_prefix, require_redis

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0  # seconds: a hung test fails instead of hanging the suite
WARM_UP = 40  # fast messages that grow a replica's batches: 1, 2, 4, 8, 16, then 32 at once


@dataclass
class Spy:
    """What a replica asked its queue for: each subscribe (size asked, ids leased) of the
    watched topic, each acknowledge_many, single acks and releases."""

    topic: str
    leased: list[tuple[int, list[str]]] = field(default_factory=list)
    acked_many: list[list[str]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def install(self, queue: sr.MessageQueue, monkeypatch: pytest.MonkeyPatch) -> None:
        subscribe, ack, ack_many, release = (
            queue.subscribe,
            queue.acknowledge,
            queue.acknowledge_many,
            queue.release,
        )

        async def spy_subscribe(
            topic: str, batch_size: int = 1, lease: float | None = None, **kw: Any
        ) -> list[sr.Message]:
            batch = await subscribe(topic, batch_size, lease, **kw)
            if topic == self.topic and batch:
                self.leased.append((batch_size, [m.id for m in batch]))
            return batch

        async def spy_ack(message_id: str) -> bool:
            self.acked.append(message_id)
            return await ack(message_id)

        async def spy_ack_many(message_ids: Sequence[str]) -> int:
            self.acked_many.append(list(message_ids))
            return await ack_many(message_ids)

        async def spy_release(message_id: str) -> bool:
            self.released.append(message_id)
            return await release(message_id)

        monkeypatch.setattr(queue, "subscribe", spy_subscribe)
        monkeypatch.setattr(queue, "acknowledge", spy_ack)
        monkeypatch.setattr(queue, "acknowledge_many", spy_ack_many)
        monkeypatch.setattr(queue, "release", spy_release)

    @property
    def sizes(self) -> list[int]:
        return [len(ids) for _, ids in self.leased]

    def batch_of(self, message_id: str) -> list[str]:
        return next(ids for _, ids in self.leased if message_id in ids)


async def spied_queue(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch, agent: str
) -> tuple[sr.MessageQueue, Spy]:
    queue = await make_queue()
    spy = Spy(sr.CommunicationSystem.inbox(agent))
    spy.install(queue, monkeypatch)
    return queue, spy


async def wait_for(condition: Any, what: str) -> None:
    with anyio.fail_after(GUARD):
        while not condition():
            await anyio.sleep(0.005)


async def test_a_fast_agent_leases_batches_and_settles_them_together(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog for a fast agent is leased many messages per subscribe (growing from one)
    and acknowledged with acknowledge_many; each message is handled once."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "fast")
    ids = await queue.publish_many(spy.topic, [{"n": i} for i in range(300)])
    seen: list[int] = []
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("fast")
        async def fast(msg: sr.Message, ctx: sr.Context) -> None:
            seen.append(msg.payload["n"])

        await rt.join(timeout=GUARD)
    assert sorted(seen) == list(range(300))
    asked = [size for size, _ in spy.leased]
    assert asked[0] == 1  # batches start at one and at most double
    assert all(later <= 2 * earlier for earlier, later in itertools.pairwise(asked))
    assert max(spy.sizes) > 4
    assert max(spy.sizes) <= MAX_BATCH
    assert len(spy.leased) < 300 / 4
    assert max(len(batch) for batch in spy.acked_many) > 1
    settled = [i for batch in spy.acked_many for i in batch] + spy.acked
    assert sorted(settled) == sorted(ids)
    assert await queue.depth(spy.topic) == 0


async def test_a_slow_agent_leases_one_message_at_a_time(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent whose handler takes longer than a batch may wait never leases more than
    it is handling: each subscribe asks for one, and no message is delivered twice."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "slow")
    await queue.publish_many(spy.topic, [{"n": i} for i in range(6)])
    attempts: list[int] = []
    leased_while_handling: list[int] = []
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("slow")
        async def slow(msg: sr.Message, ctx: sr.Context) -> None:
            attempts.append(msg.attempts)
            leased_while_handling.append((await queue.stats(spy.topic)).leased)
            await anyio.sleep(0.05)

        await rt.join(timeout=GUARD)
    assert attempts == [1] * 6
    assert [asked for asked, _ in spy.leased] == [1] * 6
    assert leased_while_handling == [1] * 6


async def test_a_slow_message_brings_the_batch_size_back_to_one(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a batch of fast messages grew the batches, one slow message makes the next
    subscribe ask for a single message again."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "mixed")
    await queue.publish_many(spy.topic, [{"sleep": 0.0}] * WARM_UP)
    [slow_id] = await queue.publish_many(spy.topic, [{"sleep": 0.25}])
    handled: list[str] = []
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("mixed")
        async def mixed(msg: sr.Message, ctx: sr.Context) -> None:
            await anyio.sleep(msg.payload["sleep"])
            handled.append(msg.id)

        await wait_for(lambda: slow_id in handled, "the slow message handled")
        await queue.publish_many(spy.topic, [{"sleep": 0.0}] * 5)
        await rt.join(timeout=GUARD)
    where = next(n for n, (_, ids) in enumerate(spy.leased) if slow_id in ids)
    assert len(spy.leased[where][1]) > 1  # the slow one came in a batch of fast ones
    assert spy.leased[where + 1][0] == 1


async def test_messages_waiting_in_a_batch_keep_their_leases(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages leased in a batch behind a handler that runs past the lease are kept
    leased by the heartbeat (with the hand-back of overdue batches off): a competing
    consumer gets none of them meanwhile, and each is handled once."""
    monkeypatch.setattr(_replica, "OVERDUE", 1000)
    queue, spy = await spied_queue(make_queue, monkeypatch, "lagging")
    handled: list[tuple[str, int]] = []
    slow_running = anyio.Event()
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("lagging", lease=0.3)
        async def lagging(msg: sr.Message, ctx: sr.Context) -> None:
            handled.append((msg.id, msg.attempts))
            if msg.payload["sleep"]:
                slow_running.set()
            await anyio.sleep(msg.payload["sleep"])

        await queue.publish_many(spy.topic, [{"sleep": 0.0}] * WARM_UP)
        await wait_for(lambda: len(handled) == WARM_UP, "warm-up handled")
        late = await queue.publish_many(spy.topic, [{"sleep": 1.0}] + [{"sleep": 0.0}] * 5)
        stolen: list[sr.Message] = []
        with anyio.fail_after(GUARD):
            await slow_running.wait()
            while len(handled) == WARM_UP + 1:  # another consumer polls while they wait
                stolen += await queue.subscribe(spy.topic, 10, 0.3, timeout=0)
                await anyio.sleep(0.02)
        await rt.join(timeout=GUARD)
    assert stolen == []
    assert spy.batch_of(late[0]) == late  # the five waited a second behind the slow one
    assert len({i for i, _ in handled}) == len(handled)
    assert {attempts for _, attempts in handled} == {1}
    assert len(handled) == WARM_UP + 6


async def test_an_overdue_batch_hands_its_waiting_messages_to_another_consumer(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a handler runs far past what its batch allowed (a cache miss after hits), the
    messages waiting behind it are released, their attempt not counted, so another worker
    takes them while the slow one still runs."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "cache")
    handled: list[str] = []
    miss_running = anyio.Event()
    miss_done = anyio.Event()
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("cache")
        async def cache(msg: sr.Message, ctx: sr.Context) -> None:
            if msg.payload.get("miss"):
                miss_running.set()
                await miss_done.wait()
            handled.append(msg.id)

        await queue.publish_many(spy.topic, [{}] * WARM_UP)
        await wait_for(lambda: len(handled) == WARM_UP, "warm-up handled")
        late = await queue.publish_many(spy.topic, [{"miss": True}] + [{}] * 5)
        taken: list[sr.Message] = []
        with anyio.fail_after(GUARD):
            await miss_running.wait()
            while len(taken) < 5:  # another worker, polling while the miss runs
                taken += await queue.subscribe(spy.topic, 10, timeout=0)
                await anyio.sleep(0.01)
        for message in taken:
            await queue.acknowledge(message.id)
        miss_done.set()
        await rt.join(timeout=GUARD)
    assert spy.batch_of(late[0]) == late
    assert spy.released == late[1:]
    assert sorted(m.id for m in taken) == sorted(late[1:])
    assert {m.attempts for m in taken} == {1}
    assert handled[WARM_UP:] == [late[0]]


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_stopping_hands_unstarted_messages_back_at_once(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    """At shutdown the leased messages of a batch not started yet go back to the queue
    while the running handlers still finish (no grace period wait, no lease wait), and
    their attempt is not counted."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "busy")
    started = anyio.Event()
    running: list[str] = []
    done: list[str] = []
    async with sr.Runtime(queue=queue, services=False, grace_period=GUARD) as rt:

        @rt.agent("busy", concurrency=concurrency)
        async def busy(msg: sr.Message, ctx: sr.Context) -> None:
            if msg.payload.get("block"):
                running.append(msg.id)
                if len(running) == concurrency:
                    started.set()
                # wait until the shutdown handed the rest back, then finish normally
                with anyio.fail_after(GUARD):
                    while (await queue.stats(spy.topic)).ready < 8:
                        await anyio.sleep(0.005)
            done.append(msg.id)

        await queue.publish_many(spy.topic, [{}] * WARM_UP)
        await wait_for(lambda: len(done) == WARM_UP, "warm-up handled")
        rest = await queue.publish_many(spy.topic, [{"block": True}] * concurrency + [{}] * 8)
        with anyio.fail_after(GUARD):
            await started.wait()
    assert len(done) == WARM_UP + concurrency  # the blocked ones finished, the rest did not
    assert sorted(spy.released) == sorted(rest[concurrency:])
    again = await queue.subscribe(spy.topic, 100, timeout=0)
    assert sorted(m.id for m in again) == sorted(rest[concurrency:])
    assert {m.attempts for m in again} == {1}  # the released lease was not counted


async def test_cancelled_handlers_and_unstarted_messages_all_go_back(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no grace period the running handler is cancelled: its message and the
    unstarted rest of its batch are released, and none has an attempt counted."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "stuck")
    started = anyio.Event()
    done: list[str] = []
    async with sr.Runtime(queue=queue, services=False, grace_period=0) as rt:

        @rt.agent("stuck")
        async def stuck(msg: sr.Message, ctx: sr.Context) -> None:
            if msg.payload.get("block"):
                started.set()
                await anyio.sleep_forever()
            done.append(msg.id)

        await queue.publish_many(spy.topic, [{}] * WARM_UP)
        await wait_for(lambda: len(done) == WARM_UP, "warm-up handled")
        rest = await queue.publish_many(spy.topic, [{"block": True}] + [{}] * 5)
        with anyio.fail_after(GUARD):
            await started.wait()
    assert spy.batch_of(rest[0]) == rest
    assert sorted(spy.released) == sorted(rest)
    again = await queue.subscribe(spy.topic, 100, timeout=0)
    assert sorted(m.id for m in again) == sorted(rest)
    assert {m.attempts for m in again} == {1}


class DeferOnce(sr.Middleware):
    """Defers the first delivery of messages marked ``defer`` for a short while."""

    def __init__(self) -> None:
        self.deferred: set[str] = set()

    async def before(self, msg: sr.Message, ctx: sr.Context) -> None:
        if msg.payload.get("defer") and msg.id not in self.deferred:
            self.deferred.add(msg.id)
            raise sr.Defer(0.05, "not now")


async def test_a_defer_mid_batch_hands_the_rest_of_the_batch_back(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message deferred mid-batch goes back with the unstarted rest of its batch (no
    attempt counted); after the pause all of them are handled, each once."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "picky")
    handled: list[tuple[str, int]] = []
    async with sr.Runtime(queue=queue, services=False, middleware=[DeferOnce()]) as rt:

        @rt.agent("picky")
        async def picky(msg: sr.Message, ctx: sr.Context) -> None:
            handled.append((msg.id, msg.attempts))

        await queue.publish_many(spy.topic, [{}] * WARM_UP)
        await wait_for(lambda: len(handled) == WARM_UP, "warm-up handled")
        late = await queue.publish_many(spy.topic, [{}] * 3 + [{"defer": True}] + [{}] * 6)
        await rt.join(timeout=GUARD)
    assert spy.batch_of(late[0]) == late
    assert spy.released == late[3:]  # the deferred one, then the rest of its batch
    assert sorted(i for i, _ in handled[WARM_UP:]) == sorted(late)
    assert {attempts for _, attempts in handled} == {1}


async def test_concurrent_replicas_batch_within_their_slots(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica with four slots leases more than four messages at a time for a fast
    agent, yet never runs more than four handlers at once."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "wide")
    await queue.publish_many(spy.topic, [{"n": i} for i in range(300)])
    seen: list[int] = []
    running = 0
    most = 0
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("wide", concurrency=4)
        async def wide(msg: sr.Message, ctx: sr.Context) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await anyio.lowlevel.checkpoint()
            seen.append(msg.payload["n"])
            running -= 1

        await rt.join(timeout=GUARD)
    assert sorted(seen) == list(range(300))
    assert spy.sizes[0] == 4  # four free slots, one message each to begin with
    assert max(spy.sizes) > 4
    assert most == 4
    assert max(len(batch) for batch in spy.acked_many) > 1


async def test_slow_concurrent_handlers_lease_only_what_their_slots_can_start(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With slow handlers a replica of concurrency 3 never leases more messages than it
    has free slots."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "llm")
    await queue.publish_many(spy.topic, [{}] * 12)
    async with sr.Runtime(queue=queue, services=False) as rt:

        @rt.agent("llm", concurrency=3)
        async def llm(msg: sr.Message, ctx: sr.Context) -> None:
            await anyio.sleep(0.05)

        await rt.join(timeout=GUARD)
    assert sum(spy.sizes) == 12
    assert max(asked for asked, _ in spy.leased) <= 3


async def test_the_balanced_dispatcher_leases_what_the_replicas_have_room_for(
    make_queue: QueueFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routed through the load balancer, an agent of three replicas of concurrency two
    gets its backlog leased several messages per subscribe, at most its free room, and
    each replica runs at most two at once."""
    queue, spy = await spied_queue(make_queue, monkeypatch, "lb")
    await queue.publish_many(spy.topic, [{"n": i} for i in range(120)])
    seen: list[int] = []
    running: Counter[int] = Counter()
    most: Counter[int] = Counter()
    async with sr.Runtime(queue=queue, balancer="least_loaded") as rt:

        @rt.agent("lb", replicas=3, concurrency=2)
        async def lb(msg: sr.Message, ctx: sr.Context) -> None:
            running[ctx.replica] += 1
            most[ctx.replica] = max(most[ctx.replica], running[ctx.replica])
            await anyio.sleep(0.001)
            seen.append(msg.payload["n"])
            running[ctx.replica] -= 1

        await rt.join(timeout=GUARD)
    assert sorted(seen) == list(range(120))
    assert max(spy.sizes) > 1
    assert max(asked for asked, _ in spy.leased) <= 6
    assert max(most.values()) <= 2
    assert spy.released == []


CRASHING_WORKER = """
import os
import signal
import sys

import anyio

import swarm_runtime as sr

url, log_path, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = 0


async def main():
    log = open(log_path, "a")
    async with sr.Runtime(queue=url, services=False) as rt:

        @rt.agent("crashy", lease=LEASE)
        async def crashy(msg, ctx):
            global count
            log.write(f"{msg.payload['n']}\\n")
            log.flush()
            os.fsync(log.fileno())
            count += 1
            if count == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

        await anyio.sleep_forever()


anyio.run(main)
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["file", "redis"])
async def test_a_kill_mid_batch_loses_nothing(tmp_path: Path, backend: str) -> None:
    """kill -9 while a replica works through a leased batch (handled messages not yet
    acknowledged, others not started): after a restart every message is handled, and
    only messages of the interrupted batch are handled twice."""
    n, kill_after, lease = 400, 150, 1.0
    options: dict[str, Any] = {}
    if backend == "redis":
        require_redis()
        prefix = f"swarmtest:{os.urandom(6).hex()}"
        options["prefix"] = prefix
        url = f"{REDIS_URL}?prefix={prefix}"
    else:
        url = f"file://{tmp_path / 'q'}"
    try:
        async with await sr.MessageQueue.open(url) as queue:
            await queue.publish_many("agent.crashy", [{"n": i} for i in range(n)])
        script = tmp_path / "crashing_worker.py"
        script.write_text(textwrap.dedent(CRASHING_WORKER).replace("LEASE", repr(lease)))
        log_path = tmp_path / "handled.txt"
        crashed = await anyio.run_process(
            [sys.executable, str(script), url, str(log_path), str(kill_after)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
        first = [int(line) for line in log_path.read_text().split()]
        assert len(first) == kill_after

        second: list[int] = []
        async with sr.Runtime(queue=url, services=False) as rt:

            @rt.agent("crashy", lease=lease)
            async def crashy(msg: sr.Message, ctx: sr.Context) -> None:
                second.append(msg.payload["n"])

            await anyio.sleep(lease * 1.5)  # the killed process's leases run out
            await rt.join(timeout=GUARD)
            assert await rt.queue.dead_letters("agent.crashy") == []
        assert set(first) | set(second) == set(range(n))  # nothing lost
        assert len(second) == len(set(second))
        if backend == "redis":  # acknowledge_many is settled in Redis when it returns
            # the window: the handled, unacknowledged messages of the interrupted batch
            assert len(set(first) & set(second)) <= MAX_BATCH
    finally:
        if backend == "redis":
            await delete_redis_prefix(options["prefix"])
