"""Metrics and feedback layers: what the metrics store, monitoring and the tuners learn per task."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._verdict import verdict
from .base import CallNext, Handler, Middleware

if TYPE_CHECKING:
    from ..agents.base import Agent
    from ..message import Message
    from ..runtime.context import Context
    from ..services.load_balancer import LoadBalancer
    from ..services.metrics import MetricsCollector
    from ..services.optimizer import SelfOptimizer

__all__ = ["Metrics", "Tuning"]


class Metrics(Middleware):
    """Counts every message of the agent into the metrics store: in flight, retries,
    outcomes (ok, error, timeout, rejected, cancelled), dead letters and the handler's
    duration (a sliding window for p95 / p99, and the Prometheus histogram).

    The outermost built-in layer, so it sees what every other layer decided. Monitoring
    samples response times and error rates from the same store.
    """

    def __init__(self, metrics: MetricsCollector) -> None:
        self.metrics = metrics

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        recorder = self.metrics.task_recorder(agent.name)  # looked up once per agent
        started = recorder.start
        finished = recorder.finish
        clock = time.perf_counter
        wall = time.time

        async def layer(msg: Message, ctx: Context) -> Any:
            started(msg.attempts)
            t0 = clock()
            try:
                result = await call_next(msg, ctx)
            except BaseException as exc:
                outcome, _, dead = verdict(exc, msg, ctx.runtime.queue.options.max_attempts)
                finished(outcome, clock() - t0, wall(), dead)
                raise
            finished("ok", clock() - t0, wall(), False)
            return result

        return layer


class Tuning(Middleware):
    """Feeds task latencies to the self-optimizer (agents it tunes) and to the load
    balancer when it places by latency (``p2c``); other agents skip this layer."""

    def __init__(self, optimizer: SelfOptimizer, balancer: LoadBalancer) -> None:
        self.optimizer = optimizer
        self.balancer = balancer

    def applies_to(self, agent: Agent) -> bool:
        return self.optimizer.tunes(agent.name) or self.balancer.strategy == "p2c"

    def wrap(self, call_next: CallNext, agent: Agent) -> Handler:
        optimizer = self.optimizer if self.optimizer.tunes(agent.name) else None
        balancer = self.balancer if self.balancer.strategy == "p2c" else None
        name = agent.name
        clock = time.perf_counter

        def record(ok: bool, replica: int, seconds: float) -> None:
            if optimizer is not None:
                optimizer.record_task(name, ok, seconds)
            if balancer is not None:
                balancer.record_latency(name, replica, seconds)

        async def layer(msg: Message, ctx: Context) -> Any:
            t0 = clock()
            try:
                result = await call_next(msg, ctx)
            except Exception as exc:
                outcome, _, _ = verdict(exc, msg, 1)
                if outcome in ("error", "timeout"):
                    record(False, ctx.replica, clock() - t0)
                raise
            record(True, ctx.replica, clock() - t0)
            return result

        return layer
