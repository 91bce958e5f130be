"""Services: every background service, wired together, with one owner-friendly ``run``.

services = Services.create(thresholds=config.monitoring.thresholds, metrics_port=9464)
runtime = Runtime(..., services=services)   # its middleware layers go around every handler
await task_group.start(services.run)   # sampler, optimizer loop, /metrics endpoint

Inside a runtime the services see each message through their middleware layers
(:attr:`Services.middleware`); :attr:`Services.listeners` feeds them from task events
instead, for events that come from elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..clock import Clock
from ..events import RuntimeListener, TaskEvent
from ..middleware import Breaker, Metrics, Middleware, Retries, Tuning
from ..retry import RetryPolicy
from ._alerts import AlertCallback
from ._probe import Probe
from .circuit import BreakerConfig
from .error_handler import ErrorHandler
from .load_balancer import LoadBalancer, Strategy
from .metrics import MetricsCollector
from .monitoring import MonitoringSystem
from .optimizer import ParameterChange, SelfOptimizer
from .prometheus import PrometheusExporter

__all__ = ["Services", "default_listeners"]


@dataclass(slots=True)
class Services:
    """The services of one runtime; ``exporter`` is None unless a metrics port was given."""

    metrics: MetricsCollector
    monitoring: MonitoringSystem
    errors: ErrorHandler
    balancer: LoadBalancer
    optimizer: SelfOptimizer
    exporter: PrometheusExporter | None = None

    @classmethod
    def create(
        cls,
        *,
        thresholds: Mapping[str, float | None] | None = None,
        probes: Iterable[Probe] = (),
        on_alert: AlertCallback | None = None,
        retry: RetryPolicy | None = None,
        breaker: BreakerConfig | None = None,
        strategy: Strategy = "least_loaded",
        metrics_port: int | None = None,
        metrics_host: str = "127.0.0.1",
        sample_interval: float = 1.0,
        optimize_interval: float = 1.0,
        clock: Clock | None = None,
        on_parameters: ParameterChange | None = None,
        classify: Mapping[type[BaseException], str] | None = None,
        metrics: MetricsCollector | None = None,
        errors: ErrorHandler | None = None,
        optimizer: SelfOptimizer | None = None,
    ) -> Services:
        """Build every service with the runtime's settings, sharing one metrics store.

        ``metrics``, ``errors`` and ``optimizer`` use services you configured yourself
        (then ``classify``, ``retry``, ``breaker`` and ``on_parameters`` do not apply to them).
        """
        metrics = metrics or MetricsCollector(clock=clock)
        errors = errors or ErrorHandler(
            classify=classify, retry=retry, breaker=breaker, clock=clock
        )
        balancer = LoadBalancer(strategy, gate=errors, clock=clock)
        monitoring = MonitoringSystem(
            thresholds=thresholds,
            probes=[*probes, balancer.readings],
            interval=sample_interval,
            clock=clock,
            metrics=metrics,
            on_alert=on_alert,
        )
        optimizer = optimizer or SelfOptimizer(
            interval=optimize_interval, clock=clock, on_change=on_parameters
        )
        exporter = None
        if metrics_port is not None:
            exporter = PrometheusExporter(
                host=metrics_host,
                port=metrics_port,
                metrics=metrics,
                monitoring=monitoring,
                errors=errors,
                balancer=balancer,
            )
        return cls(metrics, monitoring, errors, balancer, optimizer, exporter)

    def attach(self, *, probe: Probe, on_parameters: ParameterChange) -> None:
        """Connect a runtime: its probe feeds monitoring, parameter changes resize its agents."""
        self.monitoring.add_probe(probe)
        self.optimizer.on_change = on_parameters

    @property
    def middleware(self) -> list[Middleware]:
        """The services' layers of the middleware stack, outermost first: metrics (and so
        monitoring), tuning feedback, retries with error classification, circuit breaker."""
        return [
            Metrics(self.metrics),
            Tuning(self.optimizer, self.balancer),
            Retries(self.errors),
            Breaker(self.errors),
        ]

    @property
    def listeners(self) -> list[RuntimeListener]:
        """What to register with the runtime: one hub that feeds every service.

        Monitoring and the exporter read task figures from the shared metrics ledger, so
        every event is counted once; the hub skips the services that ignore task starts.
        """
        return [_Hub(self.metrics, self.errors, self.balancer, self.optimizer)]

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the sampler, the optimizer loop and the endpoint until cancelled.

        Ready (``task_status.started()``) once the endpoint listens, so a port problem fails
        the runtime's start instead of surfacing later.
        """
        async with anyio.create_task_group() as group:
            await group.start(self.monitoring.run)
            await group.start(self.optimizer.run)
            if self.exporter is not None:
                await group.start(self.exporter.run)
            task_status.started()

    def report(self) -> dict[str, Any]:
        """What the run report shows: metrics, alerts, circuit states and recent errors."""
        return {
            "metrics": self.metrics.snapshot(),
            "monitoring": self.monitoring.report(),
            "circuits": {name: state.value for name, state in self.errors.circuit_states().items()},
            "errors": [
                {
                    "timestamp": record.timestamp,
                    "agent": record.agent,
                    "kind": record.kind,
                    "error": record.error,
                    "attempt": record.attempt,
                    "action": record.action,
                }
                for record in self.errors.error_log
            ],
            "parameters": {
                agent: self.optimizer.get_parameters(agent) for agent in self.optimizer.agents
            },
        }


class _Hub:
    """One runtime listener fanning each event out to the services that have work for it.

    It asks the services whether an event changes anything for them, to skip no-op calls:
    the error handler when the task succeeded and no breaker exists yet, the balancer when
    it holds no assignment and needs no latencies, the optimizer for agents it does not tune.
    """

    __slots__ = ("_balancer", "_errors", "_metrics", "_optimizer")

    def __init__(
        self,
        metrics: MetricsCollector,
        errors: ErrorHandler,
        balancer: LoadBalancer,
        optimizer: SelfOptimizer,
    ) -> None:
        self._metrics = metrics
        self._errors = errors
        self._balancer = balancer
        self._optimizer = optimizer

    def on_task_started(self, event: TaskEvent) -> None:
        self._metrics.on_task_started(event)  # the others ignore task starts

    def on_task_finished(self, event: TaskEvent) -> None:
        self._metrics.on_task_finished(event)
        if event.outcome != "ok" or self._errors.has_breakers:
            self._errors.on_task_finished(event)
        if self._balancer.wants_task_events:
            self._balancer.on_task_finished(event)
        if self._optimizer.tunes(event.agent):
            self._optimizer.on_task_finished(event)

    def __repr__(self) -> str:
        return "<services hub: metrics, errors, balancer, optimizer>"


def default_listeners() -> list[RuntimeListener]:
    """Every task-event listener, wired together (what ``bench_runtime.py --services`` uses)."""
    return Services.create().listeners
