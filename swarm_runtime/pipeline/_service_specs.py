"""The ``services:`` block of a pipeline file: every background service, configured from YAML.

```yaml
services:
  balancer: p2c                      # least_loaded | round_robin | weighted | p2c
  breaker: {failure_threshold: 3, cooldown: 30}
  errors:
    classify: {"builtins:PermissionError": fatal}
    policies: {timeout: {max_attempts: 5, base_delay: 1.0}}
  metrics: {window: 1000, port: 9464}
  optimizer: {interval: 1.0, min_tasks: 50}
  middleware: ["myapp.middleware:RequireToken"]
```

:meth:`ServicesSpec.build` makes the :class:`~swarm_runtime.services.Services` bundle with these
settings plus the pipeline's ``retry:`` and ``monitoring:`` blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from ..errors import ConfigError
from ..middleware import LayerFunction, Middleware, as_middleware
from ..services.circuit import BreakerConfig
from ..services.error_handler import ErrorHandler, ErrorKind
from ..services.load_balancer import Strategy
from ..services.metrics import MetricsCollector
from ..services.optimizer import OptimizerConfig, SelfOptimizer
from ..services.suite import Services
from ._uses import import_callable

if TYPE_CHECKING:
    from ..clock import Clock
    from .config import MonitoringSpec, RetrySpec

__all__ = ["BreakerSpec", "ErrorsSpec", "MetricsSpec", "OptimizerSpec", "ServicesSpec"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Callable = Annotated[StrictStr, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")]
_Count = Annotated[int, Field(strict=True, ge=1)]
_Seconds = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class BreakerSpec(_Model):
    """One circuit breaker per agent (or per replica): when it opens, how it recovers."""

    failure_threshold: _Count = 5
    failure_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    window: _Count = 20
    min_calls: _Count = 10
    cooldown: _Seconds = 30.0
    half_open_max_calls: _Count = 1
    per_replica: StrictBool = False

    @model_validator(mode="after")
    def _check(self) -> BreakerSpec:
        self.to_config()
        return self

    def to_config(self) -> BreakerConfig:
        try:
            return BreakerConfig(**self.model_dump(exclude={"per_replica"}))
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc


class ErrorsSpec(_Model):
    """Error classification and retry policies per kind.

    ``classify`` maps exception classes (``"module:Class"``) to kinds, checked before the
    built-in kinds (``task_failure``, ``timeout``, ``communication_error``,
    ``resource_exhaustion``, ``fatal``); ``non_retryable`` kinds are dead-lettered at once;
    ``trip_on`` the kinds that count against the circuit breaker (default: all but fatal);
    ``policies`` a retry policy per kind (unset fields from the pipeline's ``retry:``).
    """

    classify: dict[_Callable, StrictStr] = Field(default_factory=dict)
    non_retryable: list[StrictStr] = Field(default_factory=lambda: [str(ErrorKind.FATAL)])
    trip_on: list[StrictStr] | None = None
    policies: dict[StrictStr, dict[str, Any]] = Field(default_factory=dict)

    def exception_kinds(self) -> dict[type[BaseException], str]:
        """``classify`` with its classes imported (ConfigError naming the one that is not)."""
        out: dict[type[BaseException], str] = {}
        for path, kind in self.classify.items():
            target = import_callable(path)
            if not (isinstance(target, type) and issubclass(target, BaseException)):
                raise ConfigError(f"services.errors.classify: {path!r} is not an exception class")
            out[target] = kind
        return out


class MetricsSpec(_Model):
    """The metrics store and its Prometheus endpoint (``port``; served on ``host``)."""

    window: _Count = 1000
    max_samples: _Count = 10_000
    max_series: _Count = 10_000
    port: Annotated[int, Field(strict=True, ge=0, le=65535)] | None = None
    host: StrictStr = "127.0.0.1"


class OptimizerSpec(_Model):
    """The self-optimizer: tunes the concurrency of agents that set ``max_concurrency``."""

    interval: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    min_tasks: _Count = 50
    step: Annotated[float, Field(gt=0, le=1)] = 0.1


class ServicesSpec(_Model):
    """The background services of a pipeline run (see the module docstring)."""

    enabled: StrictBool = True
    balancer: Strategy | None = None
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    errors: ErrorsSpec = Field(default_factory=ErrorsSpec)
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    middleware: list[_Callable] = Field(default_factory=list)

    def check(self, monitoring: MonitoringSpec) -> None:
        """Import everything the block and ``monitoring.on_alert`` name (ConfigError if any
        cannot be), so a bad name fails before a run starts."""
        self.errors.exception_kinds()
        self.user_middleware()
        _alert_callback(monitoring)

    def build(
        self,
        *,
        retry: RetrySpec,
        monitoring: MonitoringSpec,
        clock: Clock | None = None,
        metrics_port: int | None = None,
    ) -> Services:
        """The services bundle for one run (``metrics_port`` overrides ``metrics.port``)."""
        from .config import RetrySpec as _RetrySpec

        policy = retry.to_policy()
        policies = {
            kind: _RetrySpec.model_validate({**retry.model_dump(), **spec}).to_policy()
            for kind, spec in self.errors.policies.items()
        }
        metrics = MetricsCollector(
            window=self.metrics.window,
            max_samples=self.metrics.max_samples,
            max_series=self.metrics.max_series,
            clock=clock,
        )
        errors = ErrorHandler(
            classify=self.errors.exception_kinds(),
            retry=policy,
            policies=policies,
            non_retryable=set(self.errors.non_retryable),
            breaker=self.breaker.to_config(),
            per_replica=self.breaker.per_replica,
            trip_on=None if self.errors.trip_on is None else set(self.errors.trip_on),
            clock=clock,
        )
        on_alert = _alert_callback(monitoring)
        optimizer = SelfOptimizer(
            config=OptimizerConfig(step=self.optimizer.step),
            interval=self.optimizer.interval,
            min_tasks=self.optimizer.min_tasks,
            clock=clock,
        )
        return Services.create(
            metrics=metrics,
            errors=errors,
            optimizer=optimizer,
            thresholds=dict(monitoring.thresholds),
            on_alert=on_alert,
            sample_interval=monitoring.interval,
            strategy=self.balancer or "least_loaded",
            metrics_port=metrics_port if metrics_port is not None else self.metrics.port,
            metrics_host=self.metrics.host,
            clock=clock,
        )

    def user_middleware(self) -> list[Middleware]:
        """``middleware`` imported: a Middleware class (made with no arguments), a Middleware
        instance, or an ``async def layer(msg, ctx, call_next)``."""
        out: list[Middleware] = []
        for path in self.middleware:
            target = import_callable(path)
            if isinstance(target, type) and issubclass(target, Middleware):
                target = target()
            layer: Middleware | LayerFunction = target
            try:
                out.append(as_middleware(layer))
            except ConfigError as exc:
                raise ConfigError(f"services.middleware: {path!r}: {exc}") from exc
        return out


def _alert_callback(monitoring: MonitoringSpec) -> Any:
    """The callable ``monitoring.on_alert`` names (None if unset)."""
    if monitoring.on_alert is None:
        return None
    target = import_callable(monitoring.on_alert)
    if not callable(target):
        raise ConfigError(f"monitoring.on_alert: {monitoring.on_alert!r} is not callable")
    return target
