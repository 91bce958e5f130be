"""SelfOptimizer: converges to the knee of a synthetic agent, stays put, re-tunes on change."""

from __future__ import annotations

import random

import anyio
import pytest

from swarm_runtime.clock import ManualClock
from swarm_runtime.errors import ConfigError, UnknownAgentError
from swarm_runtime.services import OptimizerConfig, SelfOptimizer

from ._events import run_task


class KneeAgent:
    """Latency is flat up to ``knee`` concurrent tasks, then climbs (tasks queue inside).

    ``steep`` makes it climb faster than linearly, so throughput falls past the knee.
    ``noise`` multiplies every measurement by a random factor in [1 - noise, 1 + noise].
    """

    def __init__(
        self,
        knee: int,
        *,
        base: float = 0.1,
        noise: float = 0.0,
        steep: bool = False,
        seed: int = 0,
    ) -> None:
        self.knee = knee
        self.base = base
        self.noise = noise
        self.steep = steep
        self.rng = random.Random(seed)

    def measure(self, concurrency: float) -> dict[str, float]:
        over = concurrency / self.knee
        latency = self.base * max(1.0, over)
        if self.steep and over > 1:
            latency *= 1 + 3 * (over - 1) ** 2
        throughput = concurrency / latency
        if self.noise:
            throughput *= 1 + self.rng.uniform(-self.noise, self.noise)
            latency *= 1 + self.rng.uniform(-self.noise, self.noise)
        return {"throughput": throughput, "latency": latency, "concurrency_in_use": concurrency}


def drive(optimizer: SelfOptimizer, agent: KneeAgent, windows: int) -> list[float]:
    """Feed ``windows`` measurements; returns the concurrency after each."""
    trace = []
    concurrency = optimizer.get_parameters("a")["concurrency"]
    for _ in range(windows):
        concurrency = optimizer.record_performance("a", agent.measure(concurrency))["concurrency"]
        trace.append(concurrency)
    return trace


@pytest.mark.parametrize(
    ("knee", "start", "noise", "steep"),
    [
        (40, 1, 0.0, False),
        (40, 200, 0.0, False),
        (47, 1, 0.03, False),
        (120, 1, 0.03, False),
        (12, 200, 0.03, True),
        (150, 30, 0.05, True),
    ],
)
def test_settles_within_20_percent_of_the_knee(
    knee: int, start: int, noise: float, steep: bool
) -> None:
    """From below or above, with noise or a steep knee, concurrency settles near the knee."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": start})
    trace = drive(optimizer, KneeAgent(knee, noise=noise, steep=steep, seed=knee), 200)
    tail = trace[-100:]
    settled_at = max(set(tail), key=tail.count)
    assert 0.8 * knee <= settled_at <= 1.2 * knee
    assert tail.count(settled_at) >= 85  # the rest: brief one-step probes above it


def test_stays_put_when_nothing_changes() -> None:
    """Settled on a noisy but steady agent, it holds, leaving only for brief one-step probes."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 8})
    agent = KneeAgent(30, noise=0.04, seed=9)
    drive(optimizer, agent, 150)
    settled_at = optimizer.get_parameters("a")["concurrency"]
    trace = drive(optimizer, agent, 600)
    assert set(trace) <= {settled_at, settled_at + round(settled_at * 0.1)}
    assert trace.count(settled_at) >= 0.9 * len(trace)
    assert trace[-1] == settled_at or trace[-2] == settled_at


def test_without_probing_a_steady_agent_sees_a_constant_setting() -> None:
    """With probe_every=None the settled setting never moves while nothing changes."""
    optimizer = SelfOptimizer(config=OptimizerConfig(probe_every=None))
    optimizer.register_parameters("a", {"concurrency": 8})
    agent = KneeAgent(30, noise=0.04, seed=9)
    drive(optimizer, agent, 150)
    settled_at = optimizer.get_parameters("a")["concurrency"]
    assert drive(optimizer, agent, 500) == [settled_at] * 500


def test_tunes_again_when_the_agent_changes() -> None:
    """When the knee moves, probing or change detection finds the new one."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 1})
    drive(optimizer, KneeAgent(20), 150)
    assert 16 <= optimizer.get_parameters("a")["concurrency"] <= 24
    trace = drive(optimizer, KneeAgent(80), 400)  # more room: only a probe can reveal it
    assert 64 <= min(trace[-30:]) <= max(trace[-30:]) <= 96
    trace = drive(optimizer, KneeAgent(30, base=0.3), 300)  # slower and a lower knee
    assert 24 <= min(trace[-30:]) <= max(trace[-30:]) <= 36


def test_respects_bounds() -> None:
    """The limit never leaves its bounds, even when the knee lies outside them."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 4}, bounds={"concurrency": (2, 16)})
    trace = drive(optimizer, KneeAgent(100), 200)
    assert all(2 <= value <= 16 for value in trace)
    assert trace[-1] == 16
    optimizer.register_parameters("b", {"concurrency": 4}, bounds={"concurrency": (2, 16)})
    low = [
        optimizer.record_performance("b", KneeAgent(1).measure(c))["concurrency"]
        for c in [4] * 3 + [2] * 100
    ]
    assert min(low) >= 2


def test_demand_limited_agent_is_left_alone() -> None:
    """When the agent does not use its limit, throughput says nothing about it: no moves."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 50})
    for _ in range(100):
        params = optimizer.record_performance(
            "a", {"throughput": 30.0, "latency": 0.1, "concurrency_in_use": 3.0}
        )
    assert params["concurrency"] == 50


def test_batch_size_is_tuned_after_concurrency() -> None:
    """Batch size climbs while batches pay off and stops where the gain fades, within bounds."""
    optimizer = SelfOptimizer()
    optimizer.register_parameters("a", {"concurrency": 4, "batch_size": 1})

    def measure(params: dict[str, float]) -> dict[str, float]:
        c, b = params["concurrency"], params["batch_size"]
        per_batch = 0.05 + 0.01 * b  # fixed overhead plus per-item cost
        latency = per_batch * max(1.0, c / 8)
        return {"throughput": c * b / latency, "latency": latency, "concurrency_in_use": c}

    params = optimizer.get_parameters("a")
    for _ in range(400):
        params = optimizer.record_performance("a", measure(params))
    assert optimizer.settled("a")
    assert 6 <= params["concurrency"] <= 10
    assert 20 <= params["batch_size"] <= 100  # gain per 10% step < 2% only past ~b=45


def test_seed_example_and_untuned_parameters() -> None:
    """The seed's registration works; parameters it does not tune are kept, within bounds."""
    changes: list[dict[str, float]] = []
    optimizer = SelfOptimizer(on_change=lambda agent, params: changes.append(params))
    optimizer.register_parameters("agent_1", {"batch_size": 10, "timeout": 5, "retry_limit": 3})
    params = optimizer.record_performance(
        "agent_1", {"throughput": 100, "latency": 0.5, "success_rate": 0.95}
    )
    assert params == {"batch_size": 10, "timeout": 5, "retry_limit": 3}
    for _ in range(10):
        params = optimizer.record_performance(
            "agent_1", {"throughput": 100, "latency": 0.5, "success_rate": 0.95}
        )
    assert params["retry_limit"] == 3
    assert params["timeout"] == 2.0  # 4x the latency, within (1, 30)
    assert 1 <= params["batch_size"] <= 100
    assert changes
    assert len(optimizer.history("agent_1")) == 11


def test_registration_errors() -> None:
    """Out-of-bounds values and unknown agents are refused with actionable errors."""
    optimizer = SelfOptimizer()
    with pytest.raises(ConfigError, match=r"batch_size=500 is outside its bounds \[1, 100\]"):
        optimizer.register_parameters("a", {"batch_size": 500})
    with pytest.raises(UnknownAgentError):
        optimizer.record_performance("ghost", {"throughput": 1, "latency": 1})
    with pytest.raises(ConfigError):
        OptimizerConfig(step=0)


async def test_listener_windows_drive_tuning_on_the_clock(clock: ManualClock) -> None:
    """Task events fill per-agent windows that run() closes every interval of the clock."""
    seen: list[dict[str, float]] = []
    optimizer = SelfOptimizer(
        interval=1.0, clock=clock, min_tasks=5, on_change=lambda agent, p: seen.append(p)
    )
    optimizer.register_parameters("a", {"concurrency": 2})
    async with anyio.create_task_group() as group:
        await group.start(optimizer.run)
        for _ in range(3):  # too few tasks: the window stays open
            run_task([optimizer], "a", "ok", duration=0.5)
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        assert optimizer.history("a") == []
        for _ in range(4):
            run_task([optimizer], "a", "ok", duration=0.5)
        run_task([optimizer], "a", "error", duration=0.5, error=RuntimeError())
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        [entry] = optimizer.history("a")
        assert entry["metrics"] == {
            "throughput": 3.5,
            "latency": 0.5,
            "success_rate": 7 / 8,
            "concurrency_in_use": 2.0,
        }
        run_task([optimizer], "unregistered", "ok")  # ignored
        group.cancel_scope.cancel()
