"""LoadBalancer: capacity-aware choice, release, back-pressure, circuits, strategies, fairness."""

from __future__ import annotations

import random
from collections import Counter

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import CircuitOpenError, ConfigError, NoCapacityError, UnknownAgentError
from swarm_runtime.services import BreakerConfig, ErrorHandler, LoadBalancer

from ._events import event, run_task


async def test_seed_example_picks_the_roomier_agent() -> None:
    """The seed's two agents and 0.3-load task: agent_1 (more capacity) is chosen."""
    balancer = LoadBalancer()
    balancer.register_agent("agent_1", capacity=1.0)
    balancer.register_agent("agent_2", capacity=0.8)
    assigned = await balancer.assign_task({"id": "task_1", "load_estimate": 0.3})
    assert (assigned.agent, assigned.load, assigned.task_id) == ("agent_1", 0.3, "task_1")


async def test_least_loaded_is_capacity_aware() -> None:
    """Work spreads in proportion to capacity, and no replica goes over."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=4, replicas=1)
    balancer.register_agent("b", capacity=2, replicas=1)
    picks = Counter([(await balancer.assign_task()).agent for _ in range(6)])
    assert picks == {"a": 4, "b": 2}
    assert balancer.try_assign() is None


async def test_load_is_released_once_by_assignment_task_id_or_event() -> None:
    """release frees the load (idempotently); the task event releases by message id."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=2, replicas=2)
    first = await balancer.assign_task(agent="a")
    assert balancer.release(first) is True
    assert balancer.release(first) is False
    await balancer.assign_task(agent="a", task_id="m-1")
    assert balancer.release("m-1") is True
    assert balancer.release("m-1") is False
    third = await balancer.assign_task(agent="a", task_id="m-2")
    balancer.on_task_finished(event("a", "ok", replica=third.replica, message_id="m-2"))
    assert [r.load for r in balancer.snapshot("a")] == [0.0, 0.0]
    assert sum(r.assigned for r in balancer.snapshot("a")) == 3


async def test_full_replicas_make_callers_wait_in_order() -> None:
    """With every replica full, callers wait (no error) and get room first come first served."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=1, replicas=2)
    held = [await balancer.assign_task(agent="a") for _ in range(2)]
    order: list[int] = []

    async def want(n: int) -> None:
        assignment = await balancer.assign_task(agent="a")
        order.append(n)
        balancer.release(assignment)

    async with anyio.create_task_group() as group:
        for n in range(3):
            group.start_soon(want, n)
            await anyio.wait_all_tasks_blocked()
        assert balancer.waiting("a") == 3
        assert order == []
        balancer.release(held[0])
    balancer.release(held[1])
    assert order == [0, 1, 2]
    assert all(r.load == 0 for r in balancer.snapshot("a"))


async def test_wait_bound_raises_no_capacity(clock: ManualClock) -> None:
    """Past the wait bound the caller gets NoCapacityError, and leaves the line."""
    balancer = LoadBalancer(clock=clock)
    balancer.register_agent("a", capacity=1)
    await balancer.assign_task(agent="a")
    outcome: list[BaseException] = []

    async def bounded() -> None:
        try:
            await balancer.assign_task(agent="a", timeout=5)
        except NoCapacityError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(bounded)
        await anyio.wait_all_tasks_blocked()
        clock.advance(4.9)
        await anyio.wait_all_tasks_blocked()
        assert outcome == []
        clock.advance(0.1)
    assert len(outcome) == 1
    assert "at capacity for 5s" in str(outcome[0])
    assert balancer.waiting("a") == 0


async def test_cancelled_waiter_leaves_the_line_without_taking_room() -> None:
    """A waiter cancelled while waiting is removed; room freed later is not lost on it."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=1)
    held = await balancer.assign_task(agent="a")
    async with anyio.create_task_group() as group:
        group.start_soon(balancer.assign_task, None)
        await anyio.wait_all_tasks_blocked()
        assert balancer.waiting(None) == 1
        group.cancel_scope.cancel()
    assert balancer.waiting(None) == 0
    balancer.release(held)
    assert balancer.snapshot("a")[0].load == 0.0
    assert balancer.try_assign(agent="a") is not None


async def test_room_handed_to_a_waiter_cancelled_meanwhile_is_given_back(
    clock: ManualClock,
) -> None:
    """If a bounded waiter is cancelled right after room was handed to it, the room returns."""
    balancer = LoadBalancer(clock=clock)
    balancer.register_agent("a", capacity=1)
    held = await balancer.assign_task(agent="a")
    got: list[object] = []

    async def bounded() -> None:
        got.append(await balancer.assign_task(agent="a", timeout=100))

    async with anyio.create_task_group() as group:
        group.start_soon(bounded)
        await anyio.wait_all_tasks_blocked()
        balancer.release(held)  # hands the room to the waiter ...
        group.cancel_scope.cancel()  # ... which is cancelled before it can return
    assert got == []
    assert balancer.snapshot("a")[0].load == 0.0
    assert balancer.snapshot("a")[0].in_flight == 0


async def test_task_that_can_never_fit_fails_at_once() -> None:
    """A load larger than every replica's capacity raises instead of waiting forever."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=1)
    await balancer.assign_task(agent="a")
    with pytest.raises(NoCapacityError, match="can never fit"):
        await balancer.assign_task(agent="a", load=2)


async def test_replicas_with_open_circuits_are_skipped(clock: ManualClock) -> None:
    """A replica whose breaker is open gets nothing; when all are open, CircuitOpenError."""
    gate = ErrorHandler(
        breaker=BreakerConfig(failure_threshold=1, cooldown=10), per_replica=True, clock=clock
    )
    balancer = LoadBalancer(gate=gate)
    balancer.register_agent("a", capacity=100, replicas=2)
    run_task([gate], "a", "error", replica=0, error=RuntimeError())
    picks = {(await balancer.assign_task(agent="a")).replica for _ in range(10)}
    assert picks == {1}
    run_task([gate], "a", "error", replica=1, error=RuntimeError())
    with pytest.raises(CircuitOpenError, match="retry in"):
        await balancer.assign_task(agent="a")
    clock.advance(10)
    probe = await balancer.assign_task(agent="a")  # half-open: one probe per replica
    other = await balancer.assign_task(agent="a")
    assert {probe.replica, other.replica} == {0, 1}
    with pytest.raises(CircuitOpenError):
        await balancer.assign_task(agent="a")


async def test_agent_level_circuit_blocks_every_replica(clock: ManualClock) -> None:
    """With one breaker per agent, an open circuit stops all its replicas at once."""
    gate = ErrorHandler(breaker=BreakerConfig(failure_threshold=2), clock=clock)
    balancer = LoadBalancer(gate=gate)
    balancer.register_agent("a", capacity=5, replicas=3)
    balancer.register_agent("b", capacity=5)
    for _ in range(2):
        run_task([gate, balancer], "a", "error", error=RuntimeError())
    with pytest.raises(CircuitOpenError):
        await balancer.assign_task(agent="a")
    assert (await balancer.assign_task()).agent == "b"  # the pool of every agent skips "a"


async def test_round_robin_cycles_and_skips_full_replicas() -> None:
    """round_robin takes replicas in turn, passing over one that is full."""
    balancer = LoadBalancer("round_robin")
    balancer.register_agent("a", capacity=10, replicas=3)
    assert [(await balancer.assign_task(agent="a")).replica for _ in range(4)] == [0, 1, 2, 0]
    balancer.register_agent("a", capacity=2, replicas=3)  # replica 0 now full (2/2)
    assert [(await balancer.assign_task(agent="a")).replica for _ in range(2)] == [1, 2]


async def test_weighted_follows_weights_smoothly() -> None:
    """weighted gives a 3:1 split, interleaved rather than in bursts."""
    balancer = LoadBalancer("weighted")
    balancer.register_agent("a", capacity=100, replicas=2, weights=[3, 1])
    picks = [(await balancer.assign_task(agent="a")).replica for _ in range(8)]
    assert Counter(picks) == {0: 6, 1: 2}
    assert picks[:4].count(1) == 1


async def test_p2c_prefers_the_faster_replica() -> None:
    """p2c sends most work to the replica with the lower EWMA latency."""
    balancer = LoadBalancer("p2c", rng=random.Random(3))
    balancer.register_agent("a", capacity=1000, replicas=4)
    for replica, latency in enumerate([0.5, 0.5, 0.01, 0.5]):
        balancer.on_task_finished(event("a", "ok", replica=replica, duration=latency))
    picks = Counter([(await balancer.assign_task(agent="a")).replica for _ in range(200)])
    assert picks.most_common(1)[0][0] == 2
    assert picks[2] > 80


async def test_crashed_replica_releases_everything_and_wakes_waiters() -> None:
    """release_replica frees all a crashed replica held, so waiting work proceeds."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=2)
    for _ in range(2):
        await balancer.assign_task(agent="a")
    got: list[int] = []

    async def waiter() -> None:
        got.append((await balancer.assign_task(agent="a")).replica)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert balancer.release_replica("a", 0) == 2
    assert got == [0]
    assert balancer.snapshot("a")[0].in_flight == 1


async def test_growing_an_agent_serves_waiters() -> None:
    """Registering more replicas gives waiting callers room immediately."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=1)
    await balancer.assign_task(agent="a")
    got: list[int] = []

    async def waiter() -> None:
        got.append((await balancer.assign_task(agent="a")).replica)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        balancer.register_agent("a", capacity=1, replicas=2)
    assert got == [1]


async def test_unknown_agent_and_bad_settings_are_refused() -> None:
    """Unknown agents, strategies and capacities raise clear errors."""
    balancer = LoadBalancer()
    with pytest.raises(UnknownAgentError, match="nobody"):
        await balancer.assign_task(agent="nobody")
    with pytest.raises(ConfigError, match="strategy"):
        LoadBalancer("fastest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="capacity"):
        balancer.register_agent("a", capacity=0)
    with pytest.raises(ValueError, match="load"):
        balancer.try_assign(load=-1)


async def test_unregistering_fails_waiters_clearly() -> None:
    """Waiters of an agent that goes away get UnknownAgentError rather than hanging."""
    balancer = LoadBalancer()
    balancer.register_agent("a", capacity=1)
    await balancer.assign_task(agent="a")
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await balancer.assign_task(agent="a")
        except UnknownAgentError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        balancer.unregister_agent("a")
    assert len(errors) == 1


@pytest.mark.parametrize("strategy", ["least_loaded", "round_robin", "weighted", "p2c"])
async def test_capacity_never_exceeded_and_fair_under_concurrency(strategy: str) -> None:
    """Many concurrent assign/release cycles never overfill a replica and share work fairly."""
    balancer = LoadBalancer(strategy, rng=random.Random(1))  # type: ignore[arg-type]
    balancer.register_agent("a", capacity=3, replicas=4)
    running = Counter[int]()
    worst = Counter[int]()
    rng = random.Random(2)

    async def worker() -> None:
        for _ in range(25):
            assignment = await balancer.assign_task(agent="a")
            running[assignment.replica] += 1
            worst[assignment.replica] = max(worst[assignment.replica], running[assignment.replica])
            for _ in range(rng.randint(0, 3)):
                await anyio.lowlevel.checkpoint()
            running[assignment.replica] -= 1
            balancer.release(assignment)

    async with anyio.create_task_group() as group:
        for _ in range(40):
            group.start_soon(worker)
    assert max(worst.values()) <= 3
    assigned = [r.assigned for r in balancer.snapshot("a")]
    assert sum(assigned) == 1000
    assert min(assigned) >= 0.7 * (1000 / 4)  # fairness: no replica starved
    assert all(r.load == 0 and r.in_flight == 0 for r in balancer.snapshot("a"))
    assert balancer.waiting("a") == 0


@settings(max_examples=60, deadline=None)
@given(
    capacities=st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=4),
    operations=st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.25, 0.5, 1.0]), st.integers(0, 50)),
        max_size=80,
    ),
)
def test_load_accounting_invariants(
    capacities: list[float], operations: list[tuple[bool, float, int]]
) -> None:
    """Whatever the sequence of assigns and releases, load equals what is held, within capacity."""
    balancer = LoadBalancer()
    for number, capacity in enumerate(capacities):
        balancer.register_agent(f"r{number}", capacity=capacity)
    held = []
    for assign, load, pick in operations:
        if assign:
            assignment = balancer.try_assign(load=load)
            if assignment is not None:
                held.append(assignment)
            else:  # refused only when nothing had room
                assert all(r.load + load > r.capacity for r in balancer.snapshot())
        elif held:
            assert balancer.release(held.pop(pick % len(held)))
        for replica in balancer.snapshot():
            mine = [
                a.load for a in held if (a.agent, a.replica) == (replica.agent, replica.replica)
            ]
            assert replica.load == pytest.approx(sum(mine))
            assert replica.load <= replica.capacity + 1e-9
