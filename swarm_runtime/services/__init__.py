"""Background services: load balancing, error recovery, monitoring, metrics, self-optimization.

Inside a runtime they act through their middleware layers (:attr:`Services.middleware`:
metrics, tuning feedback, retries, circuit breaker); each is also a
:class:`~swarm_runtime.events.RuntimeListener`, to be fed from task events instead, and where it
samples or serves it has an ``async def run(*, task_status)`` for the runtime's task group.
"""

from ._alerts import Alert, Rule
from ._probe import SYSTEM, Probe, Reading
from ._window import WindowStats
from .circuit import BreakerConfig, CircuitBreaker, CircuitState
from .error_handler import ErrorDecision, ErrorHandler, ErrorKind, ErrorRecord
from .load_balancer import Assignment, CircuitGate, LoadBalancer, ReplicaLoad, Strategy
from .metrics import MetricsCollector, Sample, TaskTotals
from .monitoring import (
    DEFAULT_THRESHOLDS,
    MetricSample,
    MonitoringSystem,
    loop_lag_probe,
    queue_depth_probe,
)
from .optimizer import DEFAULT_BOUNDS, OptimizerConfig, SelfOptimizer
from .prometheus import PrometheusExporter
from .suite import Services, default_listeners

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_THRESHOLDS",
    "SYSTEM",
    "Alert",
    "Assignment",
    "BreakerConfig",
    "CircuitBreaker",
    "CircuitGate",
    "CircuitState",
    "ErrorDecision",
    "ErrorHandler",
    "ErrorKind",
    "ErrorRecord",
    "LoadBalancer",
    "MetricSample",
    "MetricsCollector",
    "MonitoringSystem",
    "OptimizerConfig",
    "Probe",
    "PrometheusExporter",
    "Reading",
    "ReplicaLoad",
    "Rule",
    "Sample",
    "SelfOptimizer",
    "Services",
    "Strategy",
    "TaskTotals",
    "WindowStats",
    "default_listeners",
    "loop_lag_probe",
    "queue_depth_probe",
]
