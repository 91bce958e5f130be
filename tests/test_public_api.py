"""The public surface: names users rely on stay exported."""

from __future__ import annotations

import swarm_runtime as sr

CONTRACT = {
    "Agent",
    "AgentError",
    "CommunicationSystem",
    "Context",
    "DataPipelineOrchestrator",
    "DataProcessingAgent",
    "ErrorHandler",
    "Handoff",
    "HandoffProtocol",
    "LoadBalancer",
    "Message",
    "MessageQueue",
    "MetricsCollector",
    "MonitoringSystem",
    "PayloadError",
    "QueueClosedError",
    "QueueLockedError",
    "RequestTimeoutError",
    "RetryPolicy",
    "Runtime",
    "SelfOptimizer",
    "StateManager",
    "SwarmError",
    "UnknownAgentError",
    "UnknownAgentStateError",
    "WorkflowOrchestrator",
}


def test_contract_names_are_exported() -> None:
    """Every contract name is in __all__ and importable."""
    assert set(sr.__all__) >= CONTRACT
    for name in sr.__all__:
        assert hasattr(sr, name), name


def test_every_error_derives_from_swarm_error() -> None:
    """One exception hierarchy: every exported *Error class is a SwarmError."""
    errors = [getattr(sr, n) for n in sr.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, sr.SwarmError), error


def test_package_is_typed() -> None:
    """py.typed ships with the package."""
    from importlib.resources import files

    assert files("swarm_runtime").joinpath("py.typed").is_file()
