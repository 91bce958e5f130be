"""LoadBalancer (seed slide 9): which replica of an agent gets the next task.

Each replica has a capacity (how much load it may carry at once; for the runtime, its
concurrency) and a current load. ``assign_task`` picks a replica that has room and is not
refused by its circuit breaker, using one of four strategies:

* ``least_loaded`` (default): the lowest utilisation after the task, capacity-aware; ties
  rotate so equal replicas share the work evenly;
* ``round_robin``: the next replica in turn that has room;
* ``weighted``: smooth weighted round robin (weights default to capacities);
* ``p2c``: power of two choices, the cheaper of two random replicas by EWMA latency times
  (in-flight + 1).

Load is released when the task settles (:meth:`LoadBalancer.release`, or the task event when
registered as a runtime listener), and all at once when a replica crashes. When every replica
is full the caller waits, first come first served (back-pressure); ``timeout`` bounds the wait
with :class:`~swarm_runtime.errors.NoCapacityError`. When every replica's circuit is open the
call fails fast with :class:`~swarm_runtime.errors.CircuitOpenError`.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

import anyio

from .._args import bad_argument
from ..clock import Clock, SystemClock
from ..errors import CircuitOpenError, ConfigError, NoCapacityError, UnknownAgentError
from ..events import TaskEvent
from ._probe import Reading

__all__ = ["Assignment", "CircuitGate", "LoadBalancer", "ReplicaLoad", "Strategy"]

Strategy = Literal["least_loaded", "round_robin", "weighted", "p2c"]
_EPSILON = 1e-9


class CircuitGate(Protocol):
    """What the balancer asks of circuit breakers (:class:`ErrorHandler` provides it)."""

    def allows(self, agent: str, replica: int | None = None) -> bool: ...

    def try_acquire(self, agent: str, replica: int | None = None) -> bool: ...

    def retry_after(self, agent: str, replica: int | None = None) -> float: ...


class _Replica:
    __slots__ = (
        "agent",
        "assigned",
        "capacity",
        "current",
        "in_flight",
        "index",
        "latency",
        "load",
        "weight",
    )

    def __init__(self, agent: str, index: int, capacity: float, weight: float) -> None:
        self.agent = agent
        self.index = index
        self.capacity = capacity
        self.weight = weight
        self.load = 0.0
        self.in_flight = 0
        self.assigned = 0
        self.latency: float | None = None  # EWMA of task durations, seconds
        self.current = 0.0  # smooth weighted round robin state


@dataclass(frozen=True, slots=True, eq=False)
class Assignment:
    """A task placed on ``replica`` of ``agent``; release it when the task settles."""

    agent: str
    replica: int
    load: float
    task_id: str | None
    _slot: _Replica = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    """A snapshot of one replica's load."""

    agent: str
    replica: int
    capacity: float
    load: float
    in_flight: int
    assigned: int
    weight: float
    latency: float | None

    @property
    def utilization(self) -> float:
        return self.load / self.capacity


class _Waiter:
    __slots__ = ("agent", "assignment", "error", "event", "load", "task_id")

    def __init__(self, agent: str | None, load: float, task_id: str | None) -> None:
        self.agent = agent
        self.load = load
        self.task_id = task_id
        self.event = anyio.Event()
        self.assignment: Assignment | None = None
        self.error: Exception | None = None


class LoadBalancer:
    """Capacity-aware placement of tasks on agent replicas, with back-pressure.

    ``gate``: circuit breakers to respect (an :class:`ErrorHandler`); ``clock``: times the
    wait bound; ``rng``: for ``p2c``; ``latency_alpha``: EWMA weight of a new duration.
    """

    def __init__(
        self,
        strategy: Strategy = "least_loaded",
        *,
        gate: CircuitGate | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        latency_alpha: float = 0.3,
    ) -> None:
        if strategy not in get_args(Strategy):
            raise ConfigError(
                f"unknown load-balancing strategy {strategy!r}; use one of "
                f"{', '.join(get_args(Strategy))}"
            )
        if not 0.0 < latency_alpha <= 1.0:
            raise ConfigError(f"latency_alpha must be in (0, 1], got {latency_alpha}")
        self.strategy: Strategy = strategy
        self._choose: Callable[[str | None, list[_Replica], list[int], float], int] = {
            "least_loaded": self._choose_least_loaded,
            "round_robin": self._choose_round_robin,
            "weighted": self._choose_weighted,
            "p2c": self._choose_p2c,
        }[strategy]
        self._gate = gate
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._alpha = latency_alpha
        self._agents: dict[str, list[_Replica]] = {}
        self._cursor: dict[str | None, int] = {}
        self._waiters: dict[str | None, deque[_Waiter]] = {}
        self._live: set[Assignment] = set()
        self._by_task: dict[str, list[Assignment]] = {}

    # -- registration --------------------------------------------------------------------

    def register_agent(
        self,
        agent: str,
        capacity: float = 1.0,
        *,
        replicas: int = 1,
        weight: float | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        """Register an agent with ``replicas`` replicas of ``capacity`` each.

        Registering again resizes it (capacity, replica count, weights) keeping the load in
        flight, and wakes waiters if there is new room. ``weight`` (default: the capacity) is
        used by the ``weighted`` strategy; ``weights`` sets one per replica.
        """
        if not (math.isfinite(capacity) and capacity > 0):
            raise ConfigError(f"agent {agent!r}: capacity must be > 0, got {capacity}")
        if replicas < 1:
            raise ConfigError(f"agent {agent!r}: replicas must be >= 1, got {replicas}")
        if weights is not None and len(weights) != replicas:
            raise ConfigError(
                f"agent {agent!r}: {len(weights)} weights given for {replicas} replicas"
            )
        each = [weight if weight is not None else capacity] * replicas
        chosen = list(weights) if weights is not None else each
        if any(not (math.isfinite(w) and w > 0) for w in chosen):
            raise ConfigError(f"agent {agent!r}: weights must be > 0, got {chosen}")
        pool = self._agents.get(agent, [])[:replicas]
        for slot in pool:
            slot.capacity = capacity
            slot.weight = chosen[slot.index]
        pool.extend(
            _Replica(agent, index, capacity, chosen[index]) for index in range(len(pool), replicas)
        )
        self._agents[agent] = pool
        self._serve(agent)

    def unregister_agent(self, agent: str) -> None:
        """Forget an agent; its waiters fail with :class:`UnknownAgentError`."""
        self._agents.pop(agent, None)
        for waiter in self._waiters.pop(agent, deque()):
            waiter.error = UnknownAgentError(agent, self._agents)
            waiter.event.set()

    @property
    def agents(self) -> list[str]:
        return list(self._agents)

    # -- assignment ----------------------------------------------------------------------

    async def assign_task(
        self,
        task: Mapping[str, Any] | None = None,
        *,
        agent: str | None = None,
        task_id: str | None = None,
        load: float | None = None,
        timeout: float | None = None,
    ) -> Assignment:
        """Place a task on a replica of ``agent`` (of any agent when None), waiting for room.

        ``task`` may carry ``id`` and ``load_estimate`` (the seed's task dict); ``load``
        defaults to 1.0. ``task_id`` lets the task event release the load (use the message
        id). ``timeout`` bounds the wait: past it, :class:`NoCapacityError`.
        """
        amount, tid = _task_params(task, load, task_id)
        queued = self._waiters.get(agent)
        if not queued:  # nobody waiting ahead of us: take room now if there is any
            slot = self._pick(agent, amount)
            if slot is not None:
                return self._assign(slot, amount, tid)
        self._check_fits(agent, amount)
        waiter = _Waiter(agent, amount, tid)
        self._waiters.setdefault(agent, deque()).append(waiter)
        try:
            await self._wait(waiter, timeout)
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.assignment is not None:
            return waiter.assignment
        if waiter.error is not None:
            raise waiter.error
        self._abandon(waiter)
        raise NoCapacityError(
            f"{_target(agent)}: every replica stayed at capacity for {timeout:g}s "
            f"({self._describe(agent)}); add replicas, raise their capacity, or wait longer"
        )

    def try_assign(
        self,
        task: Mapping[str, Any] | None = None,
        *,
        agent: str | None = None,
        task_id: str | None = None,
        load: float | None = None,
    ) -> Assignment | None:
        """Place a task now if there is room (and nobody is waiting), else return None."""
        amount, tid = _task_params(task, load, task_id)
        if self._waiters.get(agent):
            return None
        slot = self._pick(agent, amount)
        return None if slot is None else self._assign(slot, amount, tid)

    def release(self, assignment: Assignment | str) -> bool:
        """Release an assignment (or the oldest one of a task id); False if already released."""
        if isinstance(assignment, str):
            held = self._by_task.get(assignment)
            if not held:
                return False
            assignment = held[0]
        if assignment not in self._live:
            return False
        self._live.discard(assignment)
        if assignment.task_id is not None:
            held = self._by_task.get(assignment.task_id)
            if held is not None:
                held.remove(assignment)
                if not held:
                    del self._by_task[assignment.task_id]
        slot = assignment._slot
        slot.in_flight -= 1
        slot.load = slot.load - assignment.load if slot.in_flight > 0 else 0.0
        self._serve(slot.agent)
        return True

    def release_replica(self, agent: str, replica: int) -> int:
        """Release everything a crashed replica held; returns how many tasks that was."""
        doomed = [a for a in self._live if a.agent == agent and a.replica == replica]
        for assignment in doomed:
            self.release(assignment)
        return len(doomed)

    def record_latency(self, agent: str, replica: int, seconds: float) -> None:
        """Fold a task duration into the replica's EWMA latency (used by ``p2c``)."""
        pool = self._agents.get(agent)
        if pool is None or not 0 <= replica < len(pool) or not math.isfinite(seconds):
            return
        slot = pool[replica]
        previous = slot.latency
        slot.latency = (
            seconds if previous is None else previous + self._alpha * (seconds - previous)
        )

    # -- inspection ----------------------------------------------------------------------

    def snapshot(self, agent: str | None = None) -> list[ReplicaLoad]:
        """The load of every replica (of one agent, or of all)."""
        return [
            ReplicaLoad(
                s.agent, s.index, s.capacity, s.load, s.in_flight, s.assigned, s.weight, s.latency
            )
            for s in self._pool(agent)
        ]

    def waiting(self, agent: str | None = None) -> int:
        """How many callers are waiting for room."""
        return len(self._waiters.get(agent, ()))

    def readings(self) -> list[Reading]:
        """Per-agent utilisation (``load``), a probe for the monitoring sampler."""
        out = []
        for name, pool in self._agents.items():
            capacity = sum(s.capacity for s in pool)
            out.append(Reading("load", sum(s.load for s in pool) / capacity, name))
        return out

    # -- runtime listener ----------------------------------------------------------------

    @property
    def wants_task_events(self) -> bool:
        """Whether task events change anything: it holds assignments made with a task id
        (released by the event), or it needs latencies (``p2c``)."""
        return bool(self._by_task) or self.strategy == "p2c"

    def on_task_started(self, event: TaskEvent) -> None:
        """Nothing to do: load is taken when the task is assigned."""

    def on_task_finished(self, event: TaskEvent) -> None:
        """Release the task's load and fold its duration into the replica's latency."""
        held = self._by_task.get(event.message_id)
        if held:
            for assignment in held:
                if assignment.agent == event.agent and assignment.replica == event.replica:
                    self.release(assignment)
                    break
        if event.duration is not None and event.outcome in ("ok", "error", "timeout"):
            self.record_latency(event.agent, event.replica, event.duration)

    # -- internals -----------------------------------------------------------------------

    def _pool(self, agent: str | None) -> list[_Replica]:
        if agent is None:
            return [slot for pool in self._agents.values() for slot in pool]
        pool = self._agents.get(agent)
        if pool is None:
            raise UnknownAgentError(agent, self._agents)
        return pool

    def _pick(self, agent: str | None, amount: float) -> _Replica | None:
        """A replica with room for ``amount``, or None; raises if every circuit is open."""
        pool = self._pool(agent)
        gate = self._gate
        fits: list[int] = []
        allowed = False
        for position, slot in enumerate(pool):
            if gate is not None and not gate.allows(slot.agent, slot.index):
                continue
            allowed = True
            if slot.load + amount <= slot.capacity + _EPSILON:
                fits.append(position)
        if not allowed:
            if not pool:
                raise NoCapacityError("no agent is registered with the load balancer")
            assert gate is not None
            wait = min(gate.retry_after(s.agent, s.index) for s in pool)
            raise CircuitOpenError(
                f"{_target(agent)}: every replica's circuit breaker is open after repeated "
                f"failures; retry in {wait:.1f}s"
            )
        if not fits:
            return None
        slot = pool[self._choose(agent, pool, fits, amount)]
        if gate is not None and not gate.try_acquire(slot.agent, slot.index):
            return None
        return slot

    def _rotate(self, agent: str | None, modulo: int) -> int:
        start = self._cursor.get(agent, 0) % modulo
        self._cursor[agent] = start + 1
        return start

    def _choose_least_loaded(
        self, agent: str | None, pool: list[_Replica], fits: list[int], amount: float
    ) -> int:
        start = self._rotate(agent, len(fits))
        best = fits[start]
        best_score = (pool[best].load + amount) / pool[best].capacity
        for offset in range(1, len(fits)):
            position = fits[(start + offset) % len(fits)]
            score = (pool[position].load + amount) / pool[position].capacity
            if score < best_score - _EPSILON:
                best, best_score = position, score
        return best

    def _choose_round_robin(
        self, agent: str | None, pool: list[_Replica], fits: list[int], amount: float
    ) -> int:
        start = self._cursor.get(agent, 0) % len(pool)
        chosen = next((p for p in fits if p >= start), fits[0])
        self._cursor[agent] = chosen + 1
        return chosen

    def _choose_weighted(
        self, agent: str | None, pool: list[_Replica], fits: list[int], amount: float
    ) -> int:
        total = 0.0
        best = fits[0]
        for position in fits:
            slot = pool[position]
            slot.current += slot.weight
            total += slot.weight
            if slot.current > pool[best].current:
                best = position
        pool[best].current -= total
        return best

    def _choose_p2c(
        self, agent: str | None, pool: list[_Replica], fits: list[int], amount: float
    ) -> int:
        if len(fits) == 1:
            return fits[0]
        a, b = self._rng.sample(fits, 2)

        def cost(position: int) -> tuple[float, int]:
            slot = pool[position]
            return ((slot.latency or 0.0) * (slot.in_flight + 1), slot.in_flight)

        return a if cost(a) <= cost(b) else b

    def _assign(self, slot: _Replica, amount: float, task_id: str | None) -> Assignment:
        slot.load += amount
        slot.in_flight += 1
        slot.assigned += 1
        assignment = Assignment(slot.agent, slot.index, amount, task_id, slot)
        self._live.add(assignment)
        if task_id is not None:
            held = self._by_task.get(task_id)
            if held is None:
                self._by_task[task_id] = [assignment]
            else:
                held.append(assignment)
        return assignment

    def _check_fits(self, agent: str | None, amount: float) -> None:
        pool = self._pool(agent)
        if not pool:
            raise NoCapacityError("no agent is registered with the load balancer")
        biggest = max(slot.capacity for slot in pool)
        if amount > biggest + _EPSILON:
            raise NoCapacityError(
                f"{_target(agent)}: a task of load {amount:g} can never fit; the largest "
                f"replica capacity is {biggest:g}"
            )

    async def _wait(self, waiter: _Waiter, timeout: float | None) -> None:
        if timeout is None:
            await waiter.event.wait()
            return
        if timeout <= 0:
            await anyio.lowlevel.checkpoint()
            return
        async with anyio.create_task_group() as group:

            async def expire() -> None:
                await self._clock.sleep(timeout)
                group.cancel_scope.cancel()

            group.start_soon(expire)
            await waiter.event.wait()
            group.cancel_scope.cancel()

    def _abandon(self, waiter: _Waiter) -> None:
        """Take a waiter out of line; give back anything handed to it meanwhile."""
        queue = self._waiters.get(waiter.agent)
        if queue is not None:
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del self._waiters[waiter.agent]
        if waiter.assignment is not None:
            assignment, waiter.assignment = waiter.assignment, None
            self.release(assignment)

    def _serve(self, agent: str) -> None:
        """Hand freed room to waiters, first come first served (the agent's, then anyone's)."""
        for key in (agent, None):
            queue = self._waiters.get(key)
            while queue:
                waiter = queue[0]
                try:
                    slot = self._pick(waiter.agent, waiter.load)
                except (CircuitOpenError, NoCapacityError, UnknownAgentError) as exc:
                    slot, waiter.error = None, exc
                if slot is None and waiter.error is None:
                    break
                queue.popleft()
                if slot is not None:
                    waiter.assignment = self._assign(slot, waiter.load, waiter.task_id)
                waiter.event.set()
            if queue is not None and not queue:
                self._waiters.pop(key, None)

    def _describe(self, agent: str | None) -> str:
        return ", ".join(
            f"{s.agent}[{s.index}] {s.load:g}/{s.capacity:g}" for s in self._pool(agent)
        )


def _target(agent: str | None) -> str:
    return f"agent {agent!r}" if agent is not None else "every agent"


def _task_params(
    task: Mapping[str, Any] | None, load: float | None, task_id: str | None
) -> tuple[float, str | None]:
    if task is not None:
        if load is None and "load_estimate" in task:
            load = float(task["load_estimate"])
        if task_id is None and task.get("id") is not None:
            task_id = str(task["id"])
    amount = 1.0 if load is None else float(load)
    if not (math.isfinite(amount) and amount > 0):
        raise bad_argument("a task's load", amount, "a finite number > 0")
    return amount, task_id
