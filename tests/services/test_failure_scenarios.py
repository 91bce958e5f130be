"""All services together, driven the way the runtime drives them, against misbehaving agents.

A small stand-in dispatcher places each task with the balancer, "runs" a handler (which
returns a duration or raises), asks the error handler what to do on failure, and sends every
task event to all services. Time is a ManualClock, so cooldowns and backoff are instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import anyio

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import CircuitOpenError
from swarm_runtime.events import Outcome
from swarm_runtime.retry import RetryPolicy
from swarm_runtime.services import (
    Assignment,
    BreakerConfig,
    CircuitState,
    ErrorHandler,
    LoadBalancer,
    MetricsCollector,
    MonitoringSystem,
    PrometheusExporter,
)

from ._events import event, new_id

Handler = Callable[[int], float]  # attempt number -> duration; raises to fail


class Crash(BaseException):
    """The replica died while handling the task."""


class Dispatcher:
    """A stand-in for the runtime's replica loop, wired to every service."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.errors = ErrorHandler(
            retry=RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=4.0),
            breaker=BreakerConfig(failure_threshold=3, cooldown=30.0),
            clock=clock,
            rng=random.Random(0),
        )
        self.balancer = LoadBalancer(gate=self.errors, clock=clock)
        self.metrics = MetricsCollector(clock=clock)
        self.monitor = MonitoringSystem(
            clock=clock,
            thresholds={"error_rate": 0.2, "response_time": 1.0},
            measure_loop_lag=False,
            probes=[self.balancer.readings],
        )
        self.exporter = PrometheusExporter(
            errors=self.errors, metrics=self.metrics, monitoring=self.monitor
        )
        self.listeners = [self.metrics, self.monitor, self.errors, self.balancer, self.exporter]
        self.delays: list[float] = []
        self.dead: list[str] = []

    def emit(self, assignment: Assignment, mid: str, outcome: Outcome, **fields: object) -> None:
        done = event(
            assignment.agent, outcome, replica=assignment.replica, message_id=mid, **fields
        )  # type: ignore[arg-type]
        for listener in self.listeners:
            listener.on_task_finished(done)

    async def submit(self, agent: str, handler: Handler) -> str:
        """Deliver one message until it succeeds, is dead-lettered or is refused."""
        mid = new_id()
        for attempt in range(1, 100):
            try:
                assignment = await self.balancer.assign_task(agent=agent, task_id=mid)
            except CircuitOpenError:
                return "refused"
            start = event(
                agent, "started", replica=assignment.replica, message_id=mid, attempts=attempt
            )
            for listener in self.listeners:
                listener.on_task_started(start)
            try:
                duration = handler(attempt)
            except Exception as exc:
                decision = self.errors.decide(agent, exc, attempt=attempt)
                dead = decision.action == "dead_letter"
                self.emit(
                    assignment, mid, "error", error=exc, attempts=attempt, dead=dead, duration=0.01
                )
                if dead:
                    self.dead.append(mid)
                    return "dead"
                self.delays.append(decision.delay)
                continue
            self.emit(assignment, mid, "ok", attempts=attempt, duration=duration)
            return "ok"
        raise AssertionError("unreachable")


def always_fails(attempt: int) -> float:
    raise ConnectionError("backend down")


async def test_always_failing_agent_is_cut_off_and_reported(clock: ManualClock) -> None:
    """Retries back off, the message is dead-lettered, the circuit opens and stops traffic."""
    rt = Dispatcher(clock)
    rt.balancer.register_agent("broken", capacity=2, replicas=2)
    assert await rt.submit("broken", always_fails) == "dead"
    assert len(rt.delays) == 2
    assert all(0 <= delay <= cap for delay, cap in zip(rt.delays, [1.0, 2.0], strict=True))
    assert rt.errors.state("broken") is CircuitState.OPEN
    calls = 0

    def counted(attempt: int) -> float:
        nonlocal calls
        calls += 1
        raise ConnectionError("still down")

    assert [await rt.submit("broken", counted) for _ in range(5)] == ["refused"] * 5
    assert calls == 0  # an open circuit really stops traffic
    await rt.monitor.sample_once()
    [alert] = rt.monitor.alerts
    assert (alert.agent, alert.metric, alert.severity) == ("broken", "error_rate", "high")
    assert rt.metrics.counter("broken", "dead_letters_total") == 1
    assert rt.errors.error_counts() == {("broken", "communication_error"): 3}
    assert all(r.load == 0 for r in rt.balancer.snapshot("broken"))
    text = rt.exporter.render()[0].decode()
    assert 'swarm_circuit_state{agent="broken",state="open"} 1.0' in text


async def test_agent_that_fails_then_recovers_is_let_back_in(clock: ManualClock) -> None:
    """After the cooldown a probe succeeds, the circuit closes and the alert resolves."""
    rt = Dispatcher(clock)
    rt.balancer.register_agent("flaky", capacity=1, replicas=2)
    healthy = False

    def flaky(attempt: int) -> float:
        if not healthy:
            raise RuntimeError("warming up")
        return 0.05

    assert await rt.submit("flaky", flaky) == "dead"
    assert await rt.submit("flaky", flaky) == "refused"
    await rt.monitor.sample_once()
    assert [a.metric for a in rt.monitor.alerts] == ["error_rate"]
    healthy = True
    clock.advance(29)
    assert await rt.submit("flaky", flaky) == "refused"  # still cooling down
    clock.advance(1)
    assert await rt.submit("flaky", flaky) == "ok"  # the probe
    assert rt.errors.state("flaky") is CircuitState.CLOSED
    assert [await rt.submit("flaky", flaky) for _ in range(12)] == ["ok"] * 12
    await rt.monitor.sample_once()
    assert rt.monitor.alerts == []
    assert [a.status for a in rt.monitor.alert_history] == ["raised", "resolved"]


async def test_slow_agent_raises_a_response_time_alert_but_keeps_working(
    clock: ManualClock,
) -> None:
    """A slow agent is not failing: no breaker trips, but response time alerts high."""
    rt = Dispatcher(clock)
    rt.balancer.register_agent("slow", capacity=1)
    assert [await rt.submit("slow", lambda attempt: 2.5) for _ in range(5)] == ["ok"] * 5
    await rt.monitor.sample_once()
    [alert] = rt.monitor.alerts
    assert (alert.metric, alert.value, alert.severity) == ("response_time", 2.5, "high")
    assert rt.errors.state("slow") is CircuitState.CLOSED
    stats = rt.metrics.aggregate("slow", "task_duration_seconds")
    assert stats is not None
    assert stats.p99 == 2.5


async def test_crashed_replica_frees_its_load_and_waiting_work_moves_on(clock: ManualClock) -> None:
    """When a replica dies, its tasks end cancelled, its load is released, waiters proceed."""
    rt = Dispatcher(clock)
    rt.balancer.register_agent("crashy", capacity=1, replicas=2)
    held = []
    for _ in range(2):
        mid = new_id()
        assignment = await rt.balancer.assign_task(agent="crashy", task_id=mid)
        start = event("crashy", "started", replica=assignment.replica, message_id=mid)
        for listener in rt.listeners:
            listener.on_task_started(start)
        held.append((assignment, mid))
    placed: list[int] = []

    async def waiting_task() -> None:
        placed.append((await rt.balancer.assign_task(agent="crashy")).replica)

    async with anyio.create_task_group() as group:
        group.start_soon(waiting_task)
        await anyio.wait_all_tasks_blocked()
        assert rt.balancer.waiting("crashy") == 1
        await rt.monitor.sample_once()
        assert rt.monitor.latest()[("crashy", "in_flight")] == 2
        assert rt.monitor.latest()[("crashy", "load")] == 1.0
        [(dead_replica, mid)] = [(a, m) for a, m in held if a.replica == 0]
        rt.emit(dead_replica, mid, "cancelled", error=Crash())  # the replica crashed
    assert placed == [0]
    await rt.monitor.sample_once()
    assert rt.monitor.latest()[("crashy", "in_flight")] == 1
    assert rt.metrics.counter("crashy", "messages_cancelled") == 1
    assert rt.errors.state("crashy") is CircuitState.CLOSED  # a crash is no verdict on the agent
